package kernel

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Config is a kernel configuration: option name (with its CONFIG_ prefix)
// to value as .config writes it ("y", "m", a number, a quoted string).
// Options that are not set are absent.
type Config map[string]string

// ReadConfig reads a .config file.
func ReadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("kernel config: %w", err)
	}
	defer f.Close()
	c := Config{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "CONFIG_") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			c[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kernel config %s: %w", path, err)
	}
	return c, nil
}

// ReadConfig reads the target's .config.
func (t *Target) ReadConfig() (Config, error) {
	if t.Config == "" {
		return nil, fmt.Errorf("kernel %s: no config (the image is not in the cache)", t.Release)
	}
	return ReadConfig(t.Config)
}

// Enabled reports whether option is built in or a module.
func (c Config) Enabled(option string) bool {
	v := c[option]
	return v == "y" || v == "m"
}

// String returns a string option without its quotes ("" when not set).
func (c Config) String(option string) string {
	v := c[option]
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return strings.ReplaceAll(v[1:len(v)-1], `\"`, `"`)
	}
	return v
}
