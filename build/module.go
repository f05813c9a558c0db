package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/graft-live/graft/elfobj"
	"github.com/graft-live/graft/internal/flock"
	"github.com/graft-live/graft/kbuild"
	"github.com/graft-live/graft/klp"
)

// layout returns the target's special sections, from the probe compiled
// once per target and kept in its cache directory.
func (b *builder) layout(ctx context.Context) (*klp.Layout, error) {
	// Keyed by the probe: another probe may find other sections.
	sum := sha256.Sum256([]byte(klp.ProbeSource))
	cached := filepath.Join(b.target.Dir, "klp-layout-"+hex.EncodeToString(sum[:6])+".json")
	var l klp.Layout
	if data, err := os.ReadFile(cached); err == nil && json.Unmarshal(data, &l) == nil && len(l.Specials) > 0 {
		return &l, nil
	}
	err := flock.Do(ctx, cached+".lock", func() error {
		dir, err := os.MkdirTemp(b.work, "probe-")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "graft_probe.c"), []byte(klp.ProbeSource), 0o644); err != nil {
			return err
		}
		obj, err := kbuild.CompileExternal(ctx, b.tc, b.target.HeadersDir, dir, "graft_probe.c", b.opts.Log)
		if err != nil {
			return fmt.Errorf("probe the special sections of %s: %w", b.target.Release, err)
		}
		f, err := elfobj.Open(obj)
		if err != nil {
			return err
		}
		pl, err := klp.LayoutFromProbe(f)
		if err != nil {
			return err
		}
		l = *pl
		data, err := json.MarshalIndent(l, "", "  ")
		if err != nil {
			return err
		}
		return writeFileAtomic(cached, data)
	})
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// link writes the glue, links the module with kbuild, converts it, signs
// it if asked, and writes it and its report to the output path.
func (b *builder) link(ctx context.Context, m *module) error {
	start := time.Now()
	b.opts.progress("link")
	dir, err := os.MkdirTemp(b.work, "module-")
	if err != nil {
		return err
	}
	glue := klp.Glue(&klp.Patch{
		Description: "graft livepatch built from " + filepath.Base(b.opts.Patches[0]),
		Funcs:       m.funcs, Replace: !b.opts.NoReplace, Namespaces: m.ns,
	})
	if err := os.WriteFile(filepath.Join(dir, "graft_glue.c"), glue, 0o644); err != nil {
		return err
	}
	var objects []string
	for i, o := range m.objects {
		name := fmt.Sprintf("graft_unit%d.o", i)
		if err := o.WriteFile(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		objects = append(objects, name)
	}
	ko, err := kbuild.LinkModule(ctx, b.tc, b.target.HeadersDir, dir, b.opts.Name, []string{"graft_glue.c"}, objects, b.opts.Log)
	if err != nil {
		return err
	}
	b.rep.stage("link", start)

	start = time.Now()
	b.opts.progress("convert")
	f, err := elfobj.Open(ko)
	if err != nil {
		return err
	}
	if _, err := klp.Convert(f, m.sections); err != nil {
		return err
	}
	var out bytes.Buffer
	if err := f.Write(&out); err != nil {
		return err
	}
	data := out.Bytes()
	if b.opts.SignKey != "" {
		cfg, err := b.target.ReadConfig()
		if err != nil {
			return err
		}
		signer, err := klp.LoadSigner(b.opts.SignKey, b.opts.SignCert, cfg.String("CONFIG_MODULE_SIG_HASH"))
		if err != nil {
			return err
		}
		if data, err = signer.Sign(data); err != nil {
			return err
		}
		b.rep.Signed = true
	}
	output, err := filepath.Abs(b.opts.Output)
	if err != nil {
		return err
	}
	b.rep.Module = output
	b.rep.stage("convert", start)
	b.rep.sort()
	rep, err := json.MarshalIndent(b.rep, "", "  ")
	if err != nil {
		return err
	}
	// The module appears only complete, and only with its report.
	if err := writeFileAtomic(reportPath(output), append(rep, '\n')); err != nil {
		return err
	}
	if err := writeFileAtomic(output, data); err != nil {
		os.Remove(reportPath(output))
		return err
	}
	return nil
}

// reportPath is where the report of the module at ko goes: OUT.json
// beside OUT.ko.
func reportPath(ko string) string {
	return ko[:len(ko)-len(filepath.Ext(ko))] + ".json"
}
