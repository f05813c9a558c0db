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

// Layout is how Write places a File: the sections and symbols in file
// order, with their indices, and the contents Write generates (symbol,
// string, relocation and group tables). Computing it changes nothing in
// the File.
type Layout struct {
	f        *File
	sections []*Section
	secIndex map[*Section]int
	symbols  []*Symbol
	symIndex map[*Symbol]int
	// firstGlobal is the index of the first non-local symbol (sh_info of
	// .symtab).
	firstGlobal int
	symtab      *Section
	strtab      *Section
	shstrtab    *Section
	xindex      *Section
	// data, link and info override the contents, sh_link and sh_info of
	// the sections Write generates; entsize their sh_entsize.
	data    map[*Section][]byte
	link    map[*Section]*Section
	info    map[*Section]uint32
	entsize map[*Section]uint64
	nameOff []uint32
}

// SectionIndex is the index of s in the written file, or -1.
func (l *Layout) SectionIndex(s *Section) int {
	if i, ok := l.secIndex[s]; ok {
		return i
	}
	return -1
}

// SymbolIndex is the index of s in the written symbol table, or -1.
func (l *Layout) SymbolIndex(s *Symbol) int {
	if i, ok := l.symIndex[s]; ok {
		return i
	}
	return -1
}

// Layout lays f out for writing.
func (f *File) Layout() (*Layout, error) {
	if len(f.Sections) == 0 || f.Sections[0].Type != elf.SHT_NULL {
		return nil, fmt.Errorf("elfobj: write: Sections[0] must be the null section")
	}
	l := &Layout{f: f, data: map[*Section][]byte{}, link: map[*Section]*Section{}, info: map[*Section]uint32{}, entsize: map[*Section]uint64{}}
	l.placeSections()
	l.orderSymbols()
	for _, step := range []func() error{l.symbolTable, l.relocations, l.groups} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	l.sectionNames()
	return l, nil
}

// placeSections lists the sections in file order, adding the tables f
// lacks, and the extended index table when section indices do not fit in
// 16 bits.
func (l *Layout) placeSections() {
	l.sections = append([]*Section(nil), l.f.Sections...)
	for _, s := range l.sections {
		switch {
		case s.Type == elf.SHT_SYMTAB && l.symtab == nil:
			l.symtab = s
		case s.Type == elf.SHT_STRTAB && s.Name == ".shstrtab":
			l.shstrtab = s
		case s.Type == elf.SHT_STRTAB && s.Name == ".strtab":
			l.strtab = s
		case s.Type == elf.SHT_SYMTAB_SHNDX:
			l.xindex = s
		}
	}
	add := func(s *Section) *Section {
		l.sections = append(l.sections, s)
		return s
	}
	if l.symtab == nil && l.needsSymtab() {
		l.symtab = add(&Section{Name: ".symtab", Type: elf.SHT_SYMTAB, Addralign: 8})
	}
	if l.strtab == nil && l.symtab != nil {
		l.strtab = add(&Section{Name: ".strtab", Type: elf.SHT_STRTAB, Addralign: 1})
	}
	if l.shstrtab == nil {
		l.shstrtab = add(&Section{Name: ".shstrtab", Type: elf.SHT_STRTAB, Addralign: 1})
	}
	if l.xindex == nil && len(l.sections) >= int(elf.SHN_LORESERVE) {
		l.xindex = add(&Section{Name: ".symtab_shndx", Type: elf.SHT_SYMTAB_SHNDX, Addralign: 4, Entsize: 4})
	}
	l.secIndex = make(map[*Section]int, len(l.sections))
	for i, s := range l.sections {
		l.secIndex[s] = i
	}
}

// needsSymtab reports whether the file needs a symbol table it does not
// have: it has symbols, or sections that refer to them.
func (l *Layout) needsSymtab() bool {
	if len(l.f.Symbols) > 1 {
		return true
	}
	for _, s := range l.f.Sections {
		if s.Type == elf.SHT_RELA || s.Type == elf.SHT_REL || s.Type == elf.SHT_GROUP {
			return true
		}
	}
	return false
}

// orderSymbols puts the null symbol first, then the locals, then the rest,
// each in the File's order, as ELF requires.
func (l *Layout) orderSymbols() {
	syms := l.f.Symbols
	if len(syms) == 0 {
		syms = []*Symbol{{}}
	}
	l.symbols = append(l.symbols, syms[0])
	for _, s := range syms[1:] {
		if s.Bind == elf.STB_LOCAL {
			l.symbols = append(l.symbols, s)
		}
	}
	l.firstGlobal = len(l.symbols)
	for _, s := range syms[1:] {
		if s.Bind != elf.STB_LOCAL {
			l.symbols = append(l.symbols, s)
		}
	}
	l.symIndex = make(map[*Symbol]int, len(l.symbols))
	for i, s := range l.symbols {
		l.symIndex[s] = i
	}
}

// symbolTable generates .strtab, .symtab and the extended index table.
func (l *Layout) symbolTable() error {
	if l.symtab == nil {
		return nil
	}
	strs := newStrtab()
	var symData, shndxData bytes.Buffer
	for _, s := range l.symbols {
		var b [symSize]byte
		if s.Name != "" && s.Type != elf.STT_SECTION {
			binary.LittleEndian.PutUint32(b[0:], strs.add(s.Name))
		}
		b[4] = byte(s.Bind)<<4 | byte(s.Type)&0xf
		b[5] = s.Other
		shndx := uint32(s.Shndx)
		if s.Section != nil {
			i, ok := l.secIndex[s.Section]
			if !ok {
				return fmt.Errorf("elfobj: write: symbol %q is defined in section %q, which is not in the file", s.Name, s.Section.Name)
			}
			shndx = uint32(i)
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
	l.data[l.symtab], l.link[l.symtab], l.info[l.symtab], l.entsize[l.symtab] = symData.Bytes(), l.strtab, uint32(l.firstGlobal), symSize
	l.data[l.strtab] = strs.bytes()
	if l.xindex != nil {
		l.data[l.xindex], l.link[l.xindex] = shndxData.Bytes(), l.symtab
	}
	return nil
}

// relocations serializes the relocation sections.
func (l *Layout) relocations() error {
	for _, s := range l.sections {
		if s.Type != elf.SHT_RELA && s.Type != elf.SHT_REL {
			continue
		}
		size := uint64(relaSize)
		if s.Type == elf.SHT_REL {
			size = relSize
		}
		var b bytes.Buffer
		for _, r := range s.Relocs {
			i, ok := l.symIndex[r.Sym]
			if r.Sym == nil || !ok {
				return fmt.Errorf("elfobj: write: relocation in %s at %#x refers to a symbol that is not in the file", s.Name, r.Offset)
			}
			var e [relaSize]byte
			binary.LittleEndian.PutUint64(e[0:], r.Offset)
			binary.LittleEndian.PutUint64(e[8:], uint64(i)<<32|uint64(r.Type))
			binary.LittleEndian.PutUint64(e[16:], uint64(r.Addend))
			b.Write(e[:size])
		}
		l.data[s], l.link[s], l.entsize[s] = b.Bytes(), l.symtab, size
	}
	return nil
}

// groups serializes the section groups.
func (l *Layout) groups() error {
	for _, s := range l.sections {
		if s.Type != elf.SHT_GROUP || s.Group == nil {
			continue
		}
		var b bytes.Buffer
		binary.Write(&b, binary.LittleEndian, s.Group.Flags)
		for _, m := range s.Group.Members {
			i, ok := l.secIndex[m]
			if !ok {
				return fmt.Errorf("elfobj: write: group %s has a member that is not in the file", s.Name)
			}
			binary.Write(&b, binary.LittleEndian, uint32(i))
		}
		l.data[s], l.link[s] = b.Bytes(), l.symtab
	}
	return nil
}

// sectionNames generates .shstrtab, now that every name is known.
func (l *Layout) sectionNames() {
	names := newStrtab()
	l.nameOff = make([]uint32, len(l.sections))
	for i, s := range l.sections {
		if i > 0 {
			l.nameOff[i] = names.add(s.Name)
		}
	}
	l.data[l.shstrtab] = names.bytes()
}

// contents is what Write writes for s.
func (l *Layout) contents(s *Section) []byte {
	if d, ok := l.data[s]; ok {
		return d
	}
	return s.Data
}

// Write lays out and writes f: see Layout. f does not change.
func (f *File) Write(w io.Writer) error {
	l, err := f.Layout()
	if err != nil {
		return err
	}
	return l.Write(w)
}

// Write writes the laid out file: the header, the section contents, the
// section headers.
func (l *Layout) Write(w io.Writer) error {
	var out bytes.Buffer
	out.Write(make([]byte, headerSize))
	offsets, err := l.writeContents(&out)
	if err != nil {
		return err
	}
	pad(&out, 8)
	shoff := uint64(out.Len())
	for i, s := range l.sections {
		out.Write(l.sectionHeader(i, s, offsets[i]))
	}
	l.header(out.Bytes()[:headerSize], shoff)
	_, err = w.Write(out.Bytes())
	return err
}

// writeContents writes each section's contents at its alignment and
// returns the offsets.
func (l *Layout) writeContents(out *bytes.Buffer) ([]uint64, error) {
	offsets := make([]uint64, len(l.sections))
	for i, s := range l.sections {
		if i == 0 || s.Type == elf.SHT_NOBITS {
			offsets[i] = uint64(out.Len())
			continue
		}
		align := max(s.Addralign, 1)
		if align&(align-1) != 0 || align > maxAlign {
			return nil, fmt.Errorf("elfobj: write: section %s: alignment %d is not a power of two up to %d", s.Name, align, maxAlign)
		}
		pad(out, align)
		offsets[i] = uint64(out.Len())
		out.Write(l.contents(s))
	}
	return offsets, nil
}

func (l *Layout) sectionHeader(i int, s *Section, offset uint64) []byte {
	var h [shdrSize]byte
	size := uint64(len(l.contents(s)))
	if s.Type == elf.SHT_NOBITS {
		size = s.Size
	}
	var link, info uint32
	switch {
	case l.link[s] != nil:
		link = uint32(l.secIndex[l.link[s]])
	case s.Link != nil:
		link = uint32(l.SectionIndex(s.Link))
	}
	switch v, ok := l.info[s]; {
	case ok:
		info = v
	case s.Info != nil:
		info = uint32(l.SectionIndex(s.Info))
	default:
		info = s.InfoRaw
	}
	entsize := s.Entsize
	if e, ok := l.entsize[s]; ok {
		entsize = e
	}
	if i == 0 {
		size, link, info = 0, 0, 0
		if len(l.sections) >= int(elf.SHN_LORESERVE) {
			size = uint64(len(l.sections))
		}
		if idx := l.secIndex[l.shstrtab]; idx >= int(elf.SHN_LORESERVE) {
			link = uint32(idx)
		}
	}
	binary.LittleEndian.PutUint32(h[0:], l.nameOff[i])
	binary.LittleEndian.PutUint32(h[4:], uint32(s.Type))
	binary.LittleEndian.PutUint64(h[8:], uint64(s.Flags))
	binary.LittleEndian.PutUint64(h[16:], s.Addr)
	binary.LittleEndian.PutUint64(h[24:], offset)
	binary.LittleEndian.PutUint64(h[32:], size)
	binary.LittleEndian.PutUint32(h[40:], link)
	binary.LittleEndian.PutUint32(h[44:], info)
	binary.LittleEndian.PutUint64(h[48:], s.Addralign)
	binary.LittleEndian.PutUint64(h[56:], entsize)
	return h[:]
}

func (l *Layout) header(hdr []byte, shoff uint64) {
	h := l.f.Header
	copy(hdr, elf.ELFMAG)
	hdr[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	hdr[elf.EI_OSABI] = byte(h.OSABI)
	hdr[elf.EI_ABIVERSION] = h.ABIVersion
	typ, machine := h.Type, h.Machine
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
	binary.LittleEndian.PutUint32(hdr[48:], h.Flags)
	binary.LittleEndian.PutUint16(hdr[52:], headerSize)
	binary.LittleEndian.PutUint16(hdr[58:], shdrSize)
	shnum, shstrndx := len(l.sections), l.secIndex[l.shstrtab]
	if shnum >= int(elf.SHN_LORESERVE) {
		shnum = 0
	}
	if shstrndx >= int(elf.SHN_LORESERVE) {
		shstrndx = int(elf.SHN_XINDEX)
	}
	binary.LittleEndian.PutUint16(hdr[60:], uint16(shnum))
	binary.LittleEndian.PutUint16(hdr[62:], uint16(shstrndx))
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
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
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
