package kmod

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/ulikunitz/xz"
)

// ErrCorrupt means a file is not a kernel module, or is truncated or
// corrupted.
var ErrCorrupt = errors.New("corrupted or truncated module")

// SignatureMagic ends a signed module (include/linux/module_signature.h).
const SignatureMagic = "~Module signature appended~\n"

// sigTrailer is the size of struct module_signature, which sits between
// the signature and the magic.
const sigTrailer = 12

// Module is a kernel module file.
type Module struct {
	// Name is the module name (modinfo name=, as in lsmod).
	Name string `json:"name"`
	// Vermagic starts with the kernel release the module was built for.
	Vermagic string `json:"vermagic"`
	// Livepatch is modinfo livepatch=Y.
	Livepatch bool `json:"livepatch"`
	// Depends are the modules it needs loaded first (modinfo depends=).
	Depends []string `json:"depends,omitempty"`
	// Signed says whether a signature is appended; SignatureSize is its
	// size with its trailer, and Content the size of the module without it.
	Signed        bool `json:"signed"`
	SignatureSize int  `json:"-"`
	Content       int  `json:"-"`
	// SHA256 is the hash of the file's bytes.
	SHA256 string `json:"sha256"`
	// Info is the whole modinfo; a key that appears more than once (alias,
	// parm) keeps its values comma-separated.
	Info map[string]string `json:"-"`
}

// Release is the kernel release in the module's vermagic.
func (m *Module) Release() string {
	rel, _, _ := strings.Cut(m.Vermagic, " ")
	return rel
}

// Parse reads a module from its bytes. Malformed input is an error that
// matches ErrCorrupt, never a panic.
func Parse(data []byte) (m *Module, err error) {
	defer func() {
		// debug/elf can panic on malformed input.
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	m = &Module{Content: len(data)}
	sum := sha256.Sum256(data)
	m.SHA256 = hex.EncodeToString(sum[:])
	if bytes.HasSuffix(data, []byte(SignatureMagic)) {
		end := len(data) - len(SignatureMagic)
		if end < sigTrailer {
			return nil, fmt.Errorf("%w: signature marker without a signature", ErrCorrupt)
		}
		n := int(binary.BigEndian.Uint32(data[end-4 : end]))
		if n <= 0 || n > end-sigTrailer {
			return nil, fmt.Errorf("%w: signature of %d bytes in a file of %d", ErrCorrupt, n, len(data))
		}
		m.Signed = true
		m.SignatureSize = n + sigTrailer + len(SignatureMagic)
		m.Content = len(data) - m.SignatureSize
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer f.Close()
	if f.Type != elf.ET_REL {
		return nil, fmt.Errorf("%w: not a relocatable object (ELF type %v)", ErrCorrupt, f.Type)
	}
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOBITS && s.Offset+s.FileSize > uint64(m.Content) {
			return nil, fmt.Errorf("%w: section %s ends past the end of the module", ErrCorrupt, s.Name)
		}
	}
	s := f.Section(".modinfo")
	if s == nil {
		return nil, fmt.Errorf("%w: no .modinfo section (not a kernel module)", ErrCorrupt)
	}
	raw, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf("%w: .modinfo: %v", ErrCorrupt, err)
	}
	m.Info = ParseModinfo(raw)
	m.Name, m.Vermagic = m.Info["name"], m.Info["vermagic"]
	m.Livepatch = m.Info["livepatch"] == "Y"
	if d := m.Info["depends"]; d != "" {
		m.Depends = strings.Split(d, ",")
	}
	if m.Name == "" || m.Vermagic == "" {
		return nil, fmt.Errorf("%w: modinfo has no name or vermagic", ErrCorrupt)
	}
	return m, nil
}

// ParseModinfo decodes raw .modinfo contents: NUL-separated key=value
// strings.
func ParseModinfo(raw []byte) map[string]string {
	info := map[string]string{}
	for _, kv := range bytes.Split(raw, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			if prev, dup := info[k]; dup {
				v = prev + "," + v
			}
			info[k] = v
		}
	}
	return info
}

// File is a module file kept open: the bytes Parse checked are the ones
// read through File, and a loader can hand the same descriptor to the
// kernel (finit_module).
type File struct {
	*Module
	// Path is where the file was opened from.
	Path string
	// Data are the file's bytes, as read through F.
	Data []byte
	// F is the open file; Close closes it.
	F *os.File
}

// Open opens and reads the module at path. The caller closes it.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	m, err := Parse(data)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &File{Module: m, Path: path, Data: data, F: f}, nil
}

// Close closes the file.
func (f *File) Close() error { return f.F.Close() }

// DataStrings returns the strings that the module's data points at: the
// targets of relocations in allocated, non-executable sections that land
// in string sections. For a livepatch module these are the names in its
// klp_object and klp_func tables (the objects and the functions it
// replaces), together with whatever other strings its data holds, so a
// caller matches them against names it knows rather than taking them as
// a list of functions. Malformed input is an error that matches
// ErrCorrupt.
func DataStrings(data []byte) (names []string, err error) {
	defer func() {
		if r := recover(); r != nil { // debug/elf can panic on malformed input
			names, err = nil, fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("%w: symbols: %v", ErrCorrupt, err)
	}
	seen := map[string]bool{}
	for _, rs := range f.Sections {
		if rs.Type != elf.SHT_RELA || int(rs.Info) >= len(f.Sections) {
			continue
		}
		target := f.Sections[rs.Info]
		if target.Flags&elf.SHF_ALLOC == 0 || target.Flags&elf.SHF_EXECINSTR != 0 {
			continue
		}
		raw, err := rs.Data()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, rs.Name, err)
		}
		const relaSize = 24 // Elf64_Rela
		for off := 0; off+relaSize <= len(raw); off += relaSize {
			info := f.ByteOrder.Uint64(raw[off+8:])
			addend := int64(f.ByteOrder.Uint64(raw[off+16:]))
			// Symbol 0 is the null symbol; Symbols() starts at symbol 1.
			si := int(info >> 32)
			if si == 0 || si > len(syms) {
				continue
			}
			s := syms[si-1]
			if int(s.Section) >= len(f.Sections) || s.Section == elf.SHN_UNDEF {
				continue
			}
			strs := f.Sections[s.Section]
			if strs.Flags&elf.SHF_STRINGS == 0 || strs.Type == elf.SHT_NOBITS {
				continue
			}
			b, err := strs.Data()
			pos := int64(s.Value) + addend
			if err != nil || pos < 0 || pos >= int64(len(b)) {
				continue
			}
			str := b[pos:]
			if i := bytes.IndexByte(str, 0); i >= 0 {
				str = str[:i]
			}
			if len(str) > 0 && !seen[string(str)] {
				seen[string(str)] = true
				names = append(names, string(str))
			}
		}
	}
	return names, nil
}

// ReadFile reads a module file, decompressing .ko.xz, .ko.gz and .ko.zst
// (zstd through the zstd command), as distributions ship them.
func ReadFile(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r io.Reader
	switch {
	case strings.HasSuffix(path, ".xz"):
		r, err = xz.NewReader(bytes.NewReader(raw))
	case strings.HasSuffix(path, ".gz"):
		r, err = gzip.NewReader(bytes.NewReader(raw))
	case strings.HasSuffix(path, ".zst"):
		cmd := exec.Command("zstd", "-dcq")
		cmd.Stdin = bytes.NewReader(raw)
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("decompress %s with zstd: %w", path, err)
		}
		return out, nil
	default:
		return raw, nil
	}
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w", path, err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w", path, err)
	}
	return out, nil
}
