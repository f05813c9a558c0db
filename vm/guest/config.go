package guest

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ConfigPath is where the host puts the Config in the initramfs.
const ConfigPath = "/graft/vm.json"

// Serial devices as seen by the guest; see the package documentation.
const (
	consoleTTY = "/dev/ttyS0"
	stdoutTTY  = "/dev/ttyS1"
	stderrTTY  = "/dev/ttyS2"
	controlTTY = "/dev/ttyS3"
)

// EnvInGuest is set to "1" in the environment of every command the guest
// init starts.
const EnvInGuest = "GRAFT_VM"

// Config tells the guest init what to run.
type Config struct {
	// Argv is the command to run; empty means an interactive shell on the
	// console.
	Argv []string `json:"argv,omitempty"`
	// Env is added to the command's environment (KEY=VALUE).
	Env []string `json:"env,omitempty"`
	// Dir is the command's working directory; "" means "/".
	Dir string `json:"dir,omitempty"`
	// Stdin is a guest file that becomes the command's standard input
	// ("" = /dev/null).
	Stdin string `json:"stdin,omitempty"`
	// Modules are guest paths of kernel modules to load, in order, before the
	// command starts.
	Modules []string `json:"modules,omitempty"`
}

// Marshal encodes c for the initramfs.
func (c *Config) Marshal() ([]byte, error) {
	return json.MarshalIndent(c, "", "  ")
}

func readConfig() (*Config, error) {
	b, err := os.ReadFile(ConfigPath)
	if err != nil {
		return nil, err
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("parse %s: %w", ConfigPath, err)
	}
	return &c, nil
}

// FormatExit is the control line that reports the command's exit status.
func FormatExit(code int) string { return fmt.Sprintf("exit %d\n", code) }

// FormatError is the control line that reports a failure of the guest init
// itself; newlines in msg are folded.
func FormatError(msg string) string {
	return "error " + strings.ReplaceAll(msg, "\n", " ") + "\n"
}

// ParseControl reads the control stream. It returns the exit code when the
// command finished, or the guest's error message. ok is false when the
// stream holds no complete control line (the guest died first).
func ParseControl(b []byte) (code int, guestErr string, ok bool) {
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "exit "):
			n, err := strconv.Atoi(strings.TrimPrefix(line, "exit "))
			if err == nil {
				return n, "", true
			}
		case strings.HasPrefix(line, "error "):
			return 0, strings.TrimPrefix(line, "error "), true
		}
	}
	return 0, "", false
}
