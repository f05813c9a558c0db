package elfobj

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write lays out and writes f. It assigns the indices of sections and
// symbols (locals first, as ELF requires), regenerates .symtab, .strtab,
// .shstrtab and SHT_SYMTAB_SHNDX, and serializes relocations and groups.
func (f *File) Write(w io.Writer) error {
	if len(f.Sections) == 0 || f.Sections[0].Type != elf.SHT_NULL {
		return fmt.Errorf("elfobj: write: Sections[0] must be the null section")
	}
	symtab, strtab, shstrtab := f.tables()

	for i, s := range f.Sections {
		s.Index = i
	}
	// Symbols: null first, then locals, then the rest, each in model order.
	var ordered []*Symbol
	ordered = append(ordered, f.Symbols[0])
	for _, s := range f.Symbols[1:] {
		if s.Bind == elf.STB_LOCAL {
			ordered = append(ordered, s)
		}
	}
	firstGlobal := len(ordered)
	for _, s := range f.Symbols[1:] {
		if s.Bind != elf.STB_LOCAL {
			ordered = append(ordered, s)
		}
	}
	f.Symbols = ordered
	for i, s := range f.Symbols {
		s.Index = i
	}

	// The extended section index table, when some section index does not
	// fit in st_shndx.
	needXindex := len(f.Sections) >= int(elf.SHN_LORESERVE)
	var xindex *Section
	for _, s := range f.Sections {
		if s.Type == elf.SHT_SYMTAB_SHNDX {
			xindex = s
		}
	}
	if needXindex && xindex == nil {
		xindex = f.AddSection(&Section{Name: ".symtab_shndx", Type: elf.SHT_SYMTAB_SHNDX, Addralign: 4, Entsize: 4, Link: symtab})
		xindex.Index = len(f.Sections) - 1
	}

	// .strtab and .symtab.
	strs := newStrtab()
	var symData, shndxData bytes.Buffer
	for _, s := range f.Symbols {
		var b [symSize]byte
		if s.Name != "" && s.Type != elf.STT_SECTION {
			binary.LittleEndian.PutUint32(b[0:], strs.add(s.Name))
		}
		b[4] = byte(s.Bind)<<4 | byte(s.Type)&0xf
		b[5] = s.Other
		shndx := uint32(s.Shndx)
		if s.Section != nil {
			if !f.has(s.Section) {
				return fmt.Errorf("elfobj: write: symbol %q is defined in section %q, which is not in the file", s.Name, s.Section.Name)
			}
			shndx = uint32(s.Section.Index)
		}
		var x uint32
		if s.Section != nil && shndx >= uint32(elf.SHN_LORESERVE) {
			x, shndx = shndx, uint32(elf.SHN_XINDEX)
		}
		binary.LittleEndian.PutUint16(b[6:], uint16(shndx))
		binary.LittleEndian.PutUint64(b[8:], s.Value)
		binary.LittleEndian.PutUint64(b[16:], s.Size)
		symData.Write(b[:])
		binary.Write(&shndxData, binary.LittleEndian, x)
	}
	symtab.Data, symtab.Link, symtab.InfoRaw = symData.Bytes(), strtab, uint32(firstGlobal)
	symtab.Entsize, symtab.Addralign = symSize, 8
	strtab.Data = strs.bytes()
	if xindex != nil {
		xindex.Data, xindex.Link = shndxData.Bytes(), symtab
	}

	// Relocations and groups.
	for _, s := range f.Sections {
		switch s.Type {
		case elf.SHT_RELA, elf.SHT_REL:
			var b bytes.Buffer
			for _, r := range s.Relocs {
				if r.Sym == nil || r.Sym.Index >= len(f.Symbols) || f.Symbols[r.Sym.Index] != r.Sym {
					return fmt.Errorf("elfobj: write: relocation in %s at %#x refers to a symbol that is not in the file", s.Name, r.Offset)
				}
				var e [relaSize]byte
				binary.LittleEndian.PutUint64(e[0:], r.Offset)
				binary.LittleEndian.PutUint64(e[8:], uint64(r.Sym.Index)<<32|uint64(r.Type))
				if s.Type == elf.SHT_RELA {
					binary.LittleEndian.PutUint64(e[16:], uint64(r.Addend))
					b.Write(e[:])
				} else {
					b.Write(e[:relSize])
				}
			}
			s.Data, s.Link = b.Bytes(), symtab
			if s.Type == elf.SHT_RELA {
				s.Entsize = relaSize
			} else {
				s.Entsize = relSize
			}
		case elf.SHT_GROUP:
			if s.Group == nil {
				continue
			}
			var b bytes.Buffer
			binary.Write(&b, binary.LittleEndian, s.Group.Flags)
			for _, m := range s.Group.Members {
				if !f.has(m) {
					return fmt.Errorf("elfobj: write: group %s has a member that is not in the file", s.Name)
				}
				binary.Write(&b, binary.LittleEndian, uint32(m.Index))
			}
			s.Data, s.Link = b.Bytes(), symtab
		}
	}

	// .shstrtab last, since every name is known now.
	names := newStrtab()
	nameOff := make([]uint32, len(f.Sections))
	for i, s := range f.Sections {
		if i > 0 {
			nameOff[i] = names.add(s.Name)
		}
	}
	shstrtab.Data = names.bytes()

	// Layout: header, section contents, section headers.
	var out bytes.Buffer
	out.Write(make([]byte, headerSize))
	offsets := make([]uint64, len(f.Sections))
	for i, s := range f.Sections {
		if i == 0 || s.Type == elf.SHT_NOBITS {
			offsets[i] = uint64(out.Len())
			continue
		}
		align := s.Addralign
		if align == 0 {
			align = 1
		}
		if align&(align-1) != 0 || align > maxAlign {
			return fmt.Errorf("elfobj: write: section %s: alignment %d is not a power of two up to %d", s.Name, align, maxAlign)
		}
		pad(&out, align)
		offsets[i] = uint64(out.Len())
		out.Write(s.Data)
	}
	pad(&out, 8)
	shoff := uint64(out.Len())
	for i, s := range f.Sections {
		var h [shdrSize]byte
		size := uint64(len(s.Data))
		if s.Type == elf.SHT_NOBITS {
			size = s.Size
		}
		var link, info uint32
		if s.Link != nil {
			link = uint32(s.Link.Index)
		}
		if s.Info != nil {
			info = uint32(s.Info.Index)
		} else {
			info = s.InfoRaw
		}
		if i == 0 {
			size, link, info = 0, 0, 0
			if len(f.Sections) >= int(elf.SHN_LORESERVE) {
				size = uint64(len(f.Sections))
			}
			if shstrtab.Index >= int(elf.SHN_LORESERVE) {
				link = uint32(shstrtab.Index)
			}
		}
		binary.LittleEndian.PutUint32(h[0:], nameOff[i])
		binary.LittleEndian.PutUint32(h[4:], uint32(s.Type))
		binary.LittleEndian.PutUint64(h[8:], uint64(s.Flags))
		binary.LittleEndian.PutUint64(h[16:], s.Addr)
		binary.LittleEndian.PutUint64(h[24:], offsets[i])
		binary.LittleEndian.PutUint64(h[32:], size)
		binary.LittleEndian.PutUint32(h[40:], link)
		binary.LittleEndian.PutUint32(h[44:], info)
		binary.LittleEndian.PutUint64(h[48:], s.Addralign)
		binary.LittleEndian.PutUint64(h[56:], s.Entsize)
		out.Write(h[:])
	}

	hdr := out.Bytes()[:headerSize]
	copy(hdr, elf.ELFMAG)
	hdr[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	hdr[elf.EI_OSABI] = byte(f.Header.OSABI)
	hdr[elf.EI_ABIVERSION] = f.Header.ABIVersion
	typ, machine := f.Header.Type, f.Header.Machine
	if typ == 0 {
		typ = elf.ET_REL
	}
	if machine == 0 {
		machine = elf.EM_X86_64
	}
	binary.LittleEndian.PutUint16(hdr[16:], uint16(typ))
	binary.LittleEndian.PutUint16(hdr[18:], uint16(machine))
	binary.LittleEndian.PutUint32(hdr[20:], uint32(elf.EV_CURRENT))
	binary.LittleEndian.PutUint64(hdr[40:], shoff)
	binary.LittleEndian.PutUint32(hdr[48:], f.Header.Flags)
	binary.LittleEndian.PutUint16(hdr[52:], headerSize)
	binary.LittleEndian.PutUint16(hdr[58:], shdrSize)
	shnum, shstrndx := len(f.Sections), shstrtab.Index
	if shnum >= int(elf.SHN_LORESERVE) {
		shnum = 0
	}
	if shstrndx >= int(elf.SHN_LORESERVE) {
		shstrndx = int(elf.SHN_XINDEX)
	}
	binary.LittleEndian.PutUint16(hdr[60:], uint16(shnum))
	binary.LittleEndian.PutUint16(hdr[62:], uint16(shstrndx))
	_, err := w.Write(out.Bytes())
	return err
}

// WriteFile writes f to path atomically.
func (f *File) WriteFile(path string) error {
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// tables finds (or adds) .symtab, .strtab and .shstrtab.
func (f *File) tables() (symtab, strtab, shstrtab *Section) {
	for _, s := range f.Sections {
		switch {
		case s.Type == elf.SHT_SYMTAB && symtab == nil:
			symtab = s
		case s.Type == elf.SHT_STRTAB && s.Name == ".shstrtab":
			shstrtab = s
		case s.Type == elf.SHT_STRTAB && s.Name == ".strtab":
			strtab = s
		}
	}
	if symtab == nil {
		symtab = f.AddSection(&Section{Name: ".symtab", Type: elf.SHT_SYMTAB})
	}
	if strtab == nil {
		strtab = f.AddSection(&Section{Name: ".strtab", Type: elf.SHT_STRTAB, Addralign: 1})
	}
	if shstrtab == nil {
		shstrtab = f.AddSection(&Section{Name: ".shstrtab", Type: elf.SHT_STRTAB, Addralign: 1})
	}
	if len(f.Symbols) == 0 {
		f.Symbols = []*Symbol{{}}
	}
	return symtab, strtab, shstrtab
}

func (f *File) has(s *Section) bool {
	return s.Index < len(f.Sections) && f.Sections[s.Index] == s
}

func pad(b *bytes.Buffer, align uint64) {
	if rem := uint64(b.Len()) % align; rem != 0 {
		b.Write(make([]byte, align-rem))
	}
}

// strtab builds a string table, sharing identical strings.
type strtab struct {
	buf bytes.Buffer
	off map[string]uint32
}

func newStrtab() *strtab {
	t := &strtab{off: map[string]uint32{}}
	t.buf.WriteByte(0)
	return t
}

func (t *strtab) add(s string) uint32 {
	if o, ok := t.off[s]; ok {
		return o
	}
	o := uint32(t.buf.Len())
	t.buf.WriteString(s)
	t.buf.WriteByte(0)
	t.off[s] = o
	return o
}

func (t *strtab) bytes() []byte { return t.buf.Bytes() }
