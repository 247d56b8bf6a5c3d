#!/usr/bin/env bash
# Test executables for execve's failure paths (and two that must work),
# made from hello: mkbadelf.sh OUT_DIR HELLO_STATIC HELLO_C [CC]
#
# OUT_DIR/EXPECT lists each file with the outcomes that pass (any one):
# errno:ENAME (execve failed), signal:SIGNAME (the new image died), exit:N.
# The first is what Linux 6.1 does; a second is listed where a kernel may
# differ and still be right: Linux ignores EI_CLASS and EI_DATA (badclass
# and baddata run), a stricter ENOEXEC is fine; `dynamic` runs where
# /lib64/ld-linux-x86-64.so.2 exists and is ENOENT where it does not; a
# kernel without program interpreters (kernel_py, issue 14) answers any
# PT_INTERP with ENOEXEC; a binary cut in half dies when it touches what is missing (Linux:
# SIGSEGV from clearing the .bss tail; SIGBUS for a page past the end). `usertests badelf` (-b OUT_DIR) runs them all. Nothing here is
# committed: the files are made at build time from the freshly built hello.
set -euo pipefail
out=${1:?usage: mkbadelf.sh OUT_DIR HELLO_STATIC HELLO_C [CC]}
hello=${2:?}
src=${3:?}
cc=${4:-gcc}
tmp=$out.tmp
rm -rf "$tmp"
mkdir -p "$tmp"

# put BYTES (printf escapes) at OFFSET of FILE
poke() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
variant() { cp "$hello" "$tmp/$1"; }

variant badmagic;      poke "$tmp/badmagic" 1 'X'               # \x7fXLF
variant badclass;      poke "$tmp/badclass" 4 '\x01'            # ELFCLASS32
variant baddata;       poke "$tmp/baddata" 5 '\x02'             # big-endian
variant badversion;    poke "$tmp/badversion" 6 '\x00'          # EI_VERSION 0 (Linux ignores it)
variant badtype;       poke "$tmp/badtype" 16 '\x01\x00'        # ET_REL
variant badmachine;    poke "$tmp/badmachine" 18 '\xb7\x00'     # EM_AARCH64
variant badphentsize;  poke "$tmp/badphentsize" 54 '\x20\x00'   # 32, not 56
variant hugephnum;     poke "$tmp/hugephnum" 56 '\xff\xff'      # 65535 headers
variant zerophnum;     poke "$tmp/zerophnum" 56 '\x00\x00'      # no program headers
variant phoffpastend;  poke "$tmp/phoffpastend" 32 '\x00\x00\x00\x40\x00\x00\x00\x00'  # e_phoff 1 GiB
variant entryzero;     poke "$tmp/entryzero" 24 '\x00\x00\x00\x00\x00\x00\x00\x00'     # e_entry 0
head -c 100 "$hello" > "$tmp/truncated-ehdr-phdrs"   # the ELF header, half a program header
head -c 40 "$hello" > "$tmp/truncated-ehdr"          # not even the ELF header
size=$(stat -c %s "$hello")
head -c $((size / 2)) "$hello" > "$tmp/truncated-half"   # headers fine, segments cut
: > "$tmp/empty"
printf 'just some text\n' > "$tmp/text"
printf '#!/nonexistent/interpreter\n' > "$tmp/script-missing-interp"
printf '\x7fELF' > "$tmp/magic-only"
"$cc" -O2 -o "$tmp/dynamic" "$src"                          # PT_INTERP /lib64/ld-linux-x86-64.so.2
"$cc" -O2 -Wl,--dynamic-linker=/nonexistent/ld.so -o "$tmp/interp-missing" "$src"
"$cc" -O2 -c -o "$tmp/object.o" "$src"                      # ET_REL
"$cc" -O2 -static-pie -fno-omit-frame-pointer -o "$tmp/ok-static-pie" "$src"
cp "$hello" "$tmp/ok-static"
chmod 755 "$tmp"/*

cat > "$tmp/EXPECT" <<'LIST'
# file                  outcomes Linux gives (any one passes)
ok-static               exit:0
ok-static-pie           exit:0
dynamic                 exit:0 errno:ENOENT errno:ENOEXEC
interp-missing          errno:ENOENT errno:ENOEXEC
badmagic                errno:ENOEXEC
badclass                exit:0 errno:ENOEXEC
baddata                 exit:0 errno:ENOEXEC
badversion              exit:0
badtype                 errno:ENOEXEC
badmachine              errno:ENOEXEC
badphentsize            errno:ENOEXEC
hugephnum               errno:ENOEXEC
zerophnum               errno:ENOEXEC
phoffpastend            errno:ENOEXEC
entryzero               signal:SIGSEGV
truncated-ehdr          errno:ENOEXEC
truncated-ehdr-phdrs    errno:ENOEXEC
truncated-half          signal:SIGSEGV signal:SIGBUS signal:SIGKILL
empty                   errno:ENOEXEC
text                    errno:ENOEXEC
magic-only              errno:ENOEXEC
script-missing-interp   errno:ENOENT
object.o                errno:ENOEXEC
LIST
rm -rf "$out"
mv "$tmp" "$out"
