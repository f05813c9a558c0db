package build

import (
	"bytes"
	"debug/dwarf"
	"debug/elf"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// position is where something is declared in the source.
type position struct {
	file string // relative to the tree: "fs/proc/cmdline.c"
	line int
}

// debugInfo is what graft reads of an object's DWARF.
type debugInfo struct {
	// decls maps names of functions, variables and types ("struct x") to
	// where they are declared.
	decls map[string]position
	// protos are the prototypes of the global functions the object
	// defines: "int (struct seq_file *, void *)".
	protos map[string]string
	// noreturn are the functions declared __noreturn.
	noreturn map[string]bool
	isFunc   map[string]bool
}

func newDebugInfo() *debugInfo {
	return &debugInfo{decls: map[string]position{}, protos: map[string]string{}, noreturn: map[string]bool{}, isFunc: map[string]bool{}}
}

// readDebugInfo reads an object's DWARF; an object without debug
// information has none.
func readDebugInfo(file string) (info *debugInfo) {
	info = newDebugInfo()
	defer func() {
		if recover() != nil { // debug/dwarf can panic on malformed input
			info = newDebugInfo()
		}
	}()
	f, err := elf.Open(file)
	if err != nil {
		return info
	}
	defer f.Close()
	d, err := f.DWARF()
	if err != nil {
		return info
	}
	r := d.Reader()
	var files []*dwarf.LineFile
	for {
		e, err := r.Next()
		if err != nil || e == nil {
			return info
		}
		switch e.Tag {
		case dwarf.TagCompileUnit:
			files = nil
			if lr, err := d.LineReader(e); err == nil && lr != nil {
				files = lr.Files()
			}
			continue
		case dwarf.TagSubprogram:
			info.subprogram(d, r, e)
		case dwarf.TagVariable, dwarf.TagStructType, dwarf.TagUnionType:
		default:
			continue
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		fi, ok1 := e.Val(dwarf.AttrDeclFile).(int64)
		line, ok2 := e.Val(dwarf.AttrDeclLine).(int64)
		if name == "" || !ok1 || !ok2 || fi < 0 || int(fi) >= len(files) || files[fi] == nil {
			continue
		}
		switch e.Tag {
		case dwarf.TagStructType:
			name = "struct " + name
		case dwarf.TagUnionType:
			name = "union " + name
		}
		// A function's name wins over a variable's (a local variable may
		// be called as a function is).
		if _, seen := info.decls[name]; !seen || e.Tag == dwarf.TagSubprogram && !info.isFunc[name] {
			info.decls[name] = position{file: treePath(files[fi].Name), line: int(line)}
			info.isFunc[name] = e.Tag == dwarf.TagSubprogram
		}
	}
}

// subprogram records the prototype of a global function's definition and
// whether it returns. The reader stays at e: its children are read with
// their own reader.
func (info *debugInfo) subprogram(d *dwarf.Data, r *dwarf.Reader, e *dwarf.Entry) {
	name, _ := e.Val(dwarf.AttrName).(string)
	if name == "" {
		return
	}
	if nr, _ := e.Val(dwarf.AttrNoreturn).(bool); nr {
		info.noreturn[name] = true
	}
	ext, _ := e.Val(dwarf.AttrExternal).(bool)
	if !ext || !e.Children || e.Val(dwarf.AttrDeclaration) != nil {
		return
	}
	typeName := func(e *dwarf.Entry) string {
		off, ok := e.Val(dwarf.AttrType).(dwarf.Offset)
		if !ok {
			return "void"
		}
		t, err := d.Type(off)
		if err != nil {
			return "?"
		}
		return t.String()
	}
	var params []string
	cr := d.Reader()
	cr.Seek(e.Offset)
	cr.Next() // e itself
	for {
		c, err := cr.Next()
		if err != nil || c == nil || c.Tag == 0 {
			break
		}
		if c.Tag == dwarf.TagFormalParameter {
			params = append(params, typeName(c))
		}
		if c.Children {
			cr.SkipChildren()
		}
	}
	info.protos[name] = typeName(e) + " (" + strings.Join(params, ", ") + ")"
}

// treePath makes a path from the debug information relative to the source
// tree it was compiled in.
func treePath(p string) string {
	p = path.Clean(p)
	for _, marker := range []string{"/prepared-patched/", "/prepared/"} {
		if i := strings.LastIndex(p, marker); i >= 0 {
			return p[i+len(marker):]
		}
	}
	return strings.TrimPrefix(p, "./")
}

// sourceLine returns line n (1-based) of a file of the patched source.
func (b *builder) sourceLine(file string, n int) string {
	data, ok := b.patched[file]
	if !ok {
		var err error
		if data, err = os.ReadFile(filepath.Join(b.target.SourceDir, file)); err != nil {
			return ""
		}
	}
	lines := bytes.Split(data, []byte("\n"))
	if n < 1 || n > len(lines) {
		return ""
	}
	return strings.TrimSpace(string(lines[n-1]))
}

// debug returns the debug information of the unit's patched object.
func (u *unit) debug() *debugInfo {
	if u.dbg == nil {
		u.dbg = readDebugInfo(u.pair.patched.File)
	}
	return u.dbg
}

// unitFinding records a finding about name in unit u, with the source
// line that declares it.
func (b *builder) unitFinding(u *unit, name string, f Finding) {
	decls := u.debug().decls
	pos, ok := decls[name]
	if !ok {
		// Static locals and clones: the name before the first dot.
		pos, ok = decls[baseName(name)]
	}
	if ok {
		f.File, f.Line = pos.file, pos.line
		f.Source = b.sourceLine(pos.file, pos.line)
	}
	b.rep.finding(f)
}
