#!/usr/bin/env python3
"""Writes loopspy's man page (roff) or its bash completion from the binary's own --help, so the
two never drift from what the program says.

usage: gen_manpage.py LOOPSPY --man OUT.1 | --bash-completion OUT
"""
import re
import subprocess
import sys

SUBCOMMANDS_ORDER = ("record", "top", "replay", "dump", "doctor")


def help_of(binary, *args):
    out = subprocess.run([binary, *args, "--help"], capture_output=True, text=True, check=True).stdout
    return out.replace(binary, "loopspy")


def parse(text):
    """(description lines, usage, [(section, [(flags, description)])])"""
    lines = text.splitlines()
    desc, usage, sections, current = [], "", [], None
    for line in lines:
        if line.startswith("Usage: "):
            usage = line[len("Usage: "):]
        elif re.match(r"^[A-Z][A-Za-z ]+:$", line):
            current = (line[:-1], [])
            sections.append(current)
        elif current is None:
            if line.strip():
                desc.append(line.strip())
        elif line.startswith("  ") and line.strip():
            # CLI11 pads an option's flags to 30 columns; longer ones stand alone on their line,
            # with the description on the next, indented to column 30.
            if not line.startswith("   "):
                if len(line) > 30 and line[29] == " " and line[30] != " ":
                    current[1].append([line[:30].strip(), line[30:].strip()])
                else:
                    current[1].append([line.strip(), ""])
            elif current[1]:
                current[1][-1][1] = (current[1][-1][1] + " " + line.strip()).strip()
    return desc, usage, sections


def roff(s):
    s = s.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + s if s.startswith((".", "'")) else s


def man(binary):
    top_desc, top_usage, top_sections = parse(help_of(binary))
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    out = [f'.TH LOOPSPY 1 "" "{version}" "User Commands"', ".SH NAME",
           "loopspy \\- a sampling profiler for Python asyncio programs, built on eBPF", ".SH SYNOPSIS"]
    for sub in SUBCOMMANDS_ORDER:
        _, usage, _ = parse(help_of(binary, sub))
        out += [".B " + roff(usage.split(" ", 1)[0] + " " + sub), roff(usage.split(" ", 2)[2] if usage.count(" ") >= 2 else ""),
                ".br"]
    out += [".SH DESCRIPTION", roff(" ".join(top_desc))]
    for name, items in top_sections:
        if name == "Options":
            out.append(".SH OPTIONS")
            for flags, text in items:
                out += [".TP", ".B " + roff(flags), roff(text)]
    for sub in SUBCOMMANDS_ORDER:
        desc, usage, sections = parse(help_of(binary, sub))
        out += [f".SH {sub.upper()}", roff(" ".join(desc)), ".PP", ".B " + roff(usage)]
        for name, items in sections:
            for flags, text in items:
                out += [".TP", ".B " + roff(flags), roff(text)]
    out += [".SH EXIT STATUS",
            "0 done (or a launched command's own status), 1 anything else, 2 bad arguments, 3 no such process, "
            "4 not a Python process, 5 unsupported Python version, 6 not enough privilege, 7 the kernel lacks what "
            "loopspy needs (see \\fBloopspy doctor\\fR).",
            ".SH SEE ALSO", "The README in the source tree: the report's JSON fields, the recording format, how "
            "sampling is attached and what it costs."]
    return "\n".join(out) + "\n"


def bash_completion(binary):
    subs, flags = [], {}
    _, _, sections = parse(help_of(binary))
    for name, items in sections:
        if name == "Subcommands":
            subs = [f for f, _ in items]
    for sub in subs:
        _, _, sections = parse(help_of(binary, sub))
        words = []
        for name, items in sections:
            if name == "Options":
                for f, _ in items:
                    words += re.findall(r"(?:^|,)(-{1,2}[A-Za-z][\w-]*)", f.split(" ")[0])
        flags[sub] = sorted(set(words))
    cases = "\n".join(f'        {sub}) opts="{" ".join(flags[sub])}" ;;' for sub in subs)
    return f"""# bash completion for loopspy, generated from its --help by tools/gen_manpage.py
_loopspy() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} sub="" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${{COMP_WORDS[i]}} in {"|".join(subs)}) sub=${{COMP_WORDS[i]}}; break ;; esac
    done
    local opts="{" ".join(subs)} --help --version"
    case $sub in
{cases}
    esac
    if [[ $cur == -* || -z $sub ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}}
complete -o filenames -F _loopspy loopspy
"""


def main():
    if len(sys.argv) != 4 or sys.argv[2] not in ("--man", "--bash-completion"):
        sys.exit(__doc__)
    binary, what, path = sys.argv[1:]
    text = man(binary) if what == "--man" else bash_completion(binary)
    open(path, "w").write(text)


if __name__ == "__main__":
    main()
