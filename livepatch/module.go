package livepatch

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"strings"

	"github.com/graft-live/graft/internal/modinfo"
)

// signatureMagic ends a signed module (scripts/sign-file appends it).
const signatureMagic = "~Module signature appended~\n"

// Module describes a kernel module file.
type Module struct {
	Path string `json:"path"`
	// Name is the module name (modinfo name=, as in lsmod); a livepatch's
	// sysfs directory has the same name.
	Name string `json:"name"`
	// Vermagic starts with the kernel release the module was built for.
	Vermagic string `json:"vermagic"`
	// Livepatch is modinfo livepatch=Y.
	Livepatch bool `json:"livepatch"`
	// Signed says whether a signature is appended.
	Signed bool `json:"signed"`
	// Info is the whole modinfo.
	Info map[string]string `json:"-"`
}

// Release is the kernel release in the module's vermagic.
func (m *Module) Release() string {
	rel, _, _ := strings.Cut(m.Vermagic, " ")
	return rel
}

// Inspect reads a module file: its modinfo, and enough of the ELF to refuse
// a truncated or corrupted file before the kernel sees it.
func Inspect(path string) (m *Module, err error) {
	defer func() {
		// debug/elf can panic on malformed input.
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("%s: %w: %v", path, ErrCorrupt, r)
		}
	}()
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	signed := bytes.HasSuffix(data, []byte(signatureMagic))
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrCorrupt, err)
	}
	defer f.Close()
	if f.Type != elf.ET_REL {
		return nil, fmt.Errorf("%s: %w: not a relocatable object (ELF type %v)", path, ErrCorrupt, f.Type)
	}
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOBITS && s.Offset+s.FileSize > uint64(len(data)) {
			return nil, fmt.Errorf("%s: %w: section %s ends past the end of the file", path, ErrCorrupt, s.Name)
		}
	}
	info, err := modinfo.Read(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrCorrupt, err)
	}
	m = &Module{
		Path:      path,
		Name:      info["name"],
		Vermagic:  info["vermagic"],
		Livepatch: info["livepatch"] == "Y",
		Signed:    signed,
		Info:      info,
	}
	if m.Name == "" || m.Vermagic == "" {
		return nil, fmt.Errorf("%s: %w: modinfo has no name or vermagic", path, ErrCorrupt)
	}
	return m, nil
}

// Check refuses a module that is not a livepatch or was built for another
// kernel than release.
func (m *Module) Check(release string) error {
	if !m.Livepatch {
		return fmt.Errorf("%s: %w (modinfo has no livepatch=Y): load ordinary modules with modprobe", m.Path, ErrNotLivepatch)
	}
	if m.Release() != release {
		return fmt.Errorf("%s: %w: built for %s, running %s (rebuild it for %s)", m.Path, ErrWrongKernel, m.Release(), release, release)
	}
	return nil
}
