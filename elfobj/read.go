package elfobj

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// Sizes of ELF64 records.
const (
	symSize    = 24
	relaSize   = 24
	relSize    = 16
	headerSize = 64
	shdrSize   = 64
	// maxAlign bounds section alignment; larger values are taken as
	// corruption (kernel objects use at most a page).
	maxAlign = 1 << 24
)

// Open reads the object file at path.
func Open(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Read(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("elfobj %s: %w", path, err)
	}
	return f, nil
}

// Read parses an ELF64 relocatable. Malformed input yields an error, never
// a panic.
func Read(r io.ReaderAt) (f *File, err error) {
	defer func() {
		// debug/elf can panic on malformed input.
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("malformed ELF: %v", p)
		}
	}()
	ef, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotRelocatable, err)
	}
	defer ef.Close()
	if ef.Class != elf.ELFCLASS64 || ef.Data != elf.ELFDATA2LSB || ef.Machine != elf.EM_X86_64 || ef.Type != elf.ET_REL {
		return nil, fmt.Errorf("%w (class %v, data %v, machine %v, type %v)", ErrNotRelocatable, ef.Class, ef.Data, ef.Machine, ef.Type)
	}
	f = &File{Header: Header{OSABI: ef.OSABI, ABIVersion: ef.ABIVersion, Machine: ef.Machine, Type: ef.Type}}
	var flags [4]byte
	if _, err := r.ReadAt(flags[:], 48); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	f.Header.Flags = binary.LittleEndian.Uint32(flags[:])

	n := len(ef.Sections)
	f.Sections = make([]*Section, n)
	for i, es := range ef.Sections {
		if a := es.Addralign; a&(a-1) != 0 || a > maxAlign {
			return nil, fmt.Errorf("section %d (%s): alignment %d is not a power of two up to %d", i, es.Name, a, maxAlign)
		}
		s := &Section{
			Name: es.Name, Type: es.Type, Flags: es.Flags, Addr: es.Addr,
			Addralign: es.Addralign, Entsize: es.Entsize, Index: i,
		}
		if es.Type == elf.SHT_NOBITS {
			s.Size = es.Size
		} else if es.Type != elf.SHT_NULL && es.Size > 0 {
			// Data reads in bounded chunks: a lying sh_size fails at the end
			// of the file instead of allocating it up front.
			b, err := es.Data()
			if err != nil {
				return nil, fmt.Errorf("section %d (%s): %w", i, es.Name, err)
			}
			s.Data = b
		}
		f.Sections[i] = s
	}
	section := func(idx uint32) (*Section, error) {
		if idx == 0 {
			return nil, nil
		}
		if int(idx) >= n {
			return nil, fmt.Errorf("section index %d out of range (%d sections)", idx, n)
		}
		return f.Sections[idx], nil
	}
	for i, es := range ef.Sections {
		s := f.Sections[i]
		var err error
		if s.Link, err = section(es.Link); err != nil {
			return nil, fmt.Errorf("section %s: sh_link: %w", s.Name, err)
		}
		if es.Type == elf.SHT_RELA || es.Type == elf.SHT_REL || es.Flags&elf.SHF_INFO_LINK != 0 {
			if s.Info, err = section(es.Info); err != nil {
				return nil, fmt.Errorf("section %s: sh_info: %w", s.Name, err)
			}
		} else {
			s.InfoRaw = es.Info
		}
	}

	// The symbol table: parsed here rather than with ef.Symbols, which
	// drops the null symbol and does not resolve SHN_XINDEX.
	var symtab *Section
	var shndxTable []byte
	for _, s := range f.Sections {
		switch s.Type {
		case elf.SHT_SYMTAB:
			if symtab != nil {
				return nil, fmt.Errorf("more than one symbol table")
			}
			symtab = s
		case elf.SHT_SYMTAB_SHNDX:
			shndxTable = s.Data
		}
	}
	if symtab != nil {
		if err := f.readSymbols(symtab, shndxTable); err != nil {
			return nil, err
		}
	} else {
		f.Symbols = []*Symbol{{}}
	}
	for _, s := range f.Sections {
		switch s.Type {
		case elf.SHT_RELA, elf.SHT_REL:
			if err := f.readRelocs(s); err != nil {
				return nil, err
			}
		case elf.SHT_GROUP:
			if err := f.readGroup(s); err != nil {
				return nil, err
			}
		}
	}
	return f, nil
}

func (f *File) readSymbols(symtab *Section, shndxTable []byte) error {
	strtab := symtab.Link
	if strtab == nil || strtab.Type != elf.SHT_STRTAB {
		return fmt.Errorf("symbol table %s has no string table", symtab.Name)
	}
	if len(symtab.Data)%symSize != 0 {
		return fmt.Errorf("symbol table size %d is not a multiple of %d", len(symtab.Data), symSize)
	}
	count := len(symtab.Data) / symSize
	f.Symbols = make([]*Symbol, count)
	for i := 0; i < count; i++ {
		b := symtab.Data[i*symSize : (i+1)*symSize]
		name, err := cstring(strtab.Data, binary.LittleEndian.Uint32(b[0:4]))
		if err != nil {
			return fmt.Errorf("symbol %d: %w", i, err)
		}
		info := b[4]
		sym := &Symbol{
			Name:  name,
			Bind:  elf.ST_BIND(info),
			Type:  elf.ST_TYPE(info),
			Other: b[5],
			Value: binary.LittleEndian.Uint64(b[8:16]),
			Size:  binary.LittleEndian.Uint64(b[16:24]),
			Index: i,
		}
		shndx := uint32(binary.LittleEndian.Uint16(b[6:8]))
		if elf.SectionIndex(shndx) == elf.SHN_XINDEX {
			if len(shndxTable) < (i+1)*4 {
				return fmt.Errorf("symbol %d (%s) uses SHN_XINDEX without a SHT_SYMTAB_SHNDX entry", i, name)
			}
			shndx = binary.LittleEndian.Uint32(shndxTable[i*4:])
		} else if shndx >= uint32(elf.SHN_LORESERVE) {
			sym.Shndx = elf.SectionIndex(shndx)
			f.Symbols[i] = sym
			continue
		}
		if shndx != 0 {
			if int(shndx) >= len(f.Sections) {
				return fmt.Errorf("symbol %d (%s): section index %d out of range", i, name, shndx)
			}
			sym.Section = f.Sections[shndx]
			if sym.Type == elf.STT_SECTION && sym.Section.Symbol == nil {
				sym.Section.Symbol = sym
			}
		}
		f.Symbols[i] = sym
	}
	if count == 0 {
		f.Symbols = []*Symbol{{}}
	}
	return nil
}

func (f *File) readRelocs(s *Section) error {
	size := relaSize
	if s.Type == elf.SHT_REL {
		size = relSize
	}
	if len(s.Data)%size != 0 {
		return fmt.Errorf("relocation section %s: size %d is not a multiple of %d", s.Name, len(s.Data), size)
	}
	s.Relocs = make([]Reloc, 0, len(s.Data)/size)
	for off := 0; off < len(s.Data); off += size {
		b := s.Data[off : off+size]
		info := binary.LittleEndian.Uint64(b[8:16])
		symIdx := int(info >> 32)
		if symIdx >= len(f.Symbols) {
			return fmt.Errorf("relocation section %s: symbol index %d out of range", s.Name, symIdx)
		}
		r := Reloc{
			Offset: binary.LittleEndian.Uint64(b[0:8]),
			Type:   elf.R_X86_64(uint32(info)),
			Sym:    f.Symbols[symIdx],
		}
		if size == relaSize {
			r.Addend = int64(binary.LittleEndian.Uint64(b[16:24]))
		}
		s.Relocs = append(s.Relocs, r)
	}
	s.Data = nil
	return nil
}

func (f *File) readGroup(s *Section) error {
	if len(s.Data) < 4 || len(s.Data)%4 != 0 {
		return fmt.Errorf("group section %s: bad size %d", s.Name, len(s.Data))
	}
	g := &Group{Flags: binary.LittleEndian.Uint32(s.Data)}
	for off := 4; off < len(s.Data); off += 4 {
		idx := binary.LittleEndian.Uint32(s.Data[off:])
		if idx == 0 || int(idx) >= len(f.Sections) {
			return fmt.Errorf("group section %s: member index %d out of range", s.Name, idx)
		}
		g.Members = append(g.Members, f.Sections[idx])
	}
	s.Group = g
	return nil
}

// cstring returns the NUL-terminated string at off.
func cstring(tab []byte, off uint32) (string, error) {
	if int(off) > len(tab) {
		return "", fmt.Errorf("string offset %d out of range", off)
	}
	end := bytes.IndexByte(tab[off:], 0)
	if end < 0 {
		return "", fmt.Errorf("string at %d is not terminated", off)
	}
	return string(tab[off : int(off)+end]), nil
}
