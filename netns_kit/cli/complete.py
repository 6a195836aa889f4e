"""``netns-kit completion bash|zsh|fish``: completion scripts made from the parser itself,
so they offer exactly the commands and options ``--help`` lists.

Bash gets a function over ``COMP_WORDS``; zsh loads the same one through
``bashcompinit``; fish gets one ``complete`` line per command and option. Options
that take a value complete it from their choices, or as a file name (``FILE``,
``PATH``); the command's own positional arguments complete as file names."""

from __future__ import annotations

import argparse
import shlex
from typing import TextIO

from netns_kit.cli.codes import EXIT_OK

#: value names completed as file names
_FILES = frozenset({"FILE", "PATH"})


def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps its subcommands nowhere public
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS]


def _takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0


def _words(values: object) -> str:
    return " ".join(map(str, values))  # type: ignore[call-overload]


def _bash_value(action: argparse.Action) -> str:
    """The ``case "$prev"`` line that completes the value of an option."""
    pattern = "|".join(action.option_strings)
    if action.choices:
        reply = f'COMPREPLY=($(compgen -W "{_words(action.choices)}" -- "$cur"))'
    elif action.metavar in _FILES:
        reply = 'COMPREPLY=($(compgen -f -- "$cur"))'
    else:
        reply = ""
    return f"            {pattern}) {reply}; return;;" if reply else f"            {pattern}) return;;"


def _bash_command(name: str, sub: argparse.ArgumentParser) -> str:
    words = " ".join(o for a in options(sub) for o in a.option_strings)
    values = [_bash_value(a) for a in options(sub) if _takes_value(a)]
    positional = [a for a in sub._actions if not a.option_strings]
    choices = [c for a in positional if a.choices for c in a.choices]
    files = any(a.metavar in _FILES for a in positional)
    plain = f'compgen -W "{_words(choices)}" -- "$cur"' if choices or not files else 'compgen -f -- "$cur"'
    lines = [f"        {name})", '            case "$prev" in', *values, "            esac"]
    lines.append(f'            if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "{words}" -- "$cur"))')
    lines.append(f"            else COMPREPLY=($({plain})); fi;;")
    return "\n".join(lines)


def bash(parser: argparse.ArgumentParser) -> str:
    subs = commands(parser)
    cases = [_bash_command(name, sub) for name, sub in subs.items()]
    top = " ".join(o for a in options(parser) for o in a.option_strings)
    return f"""# netns-kit completion for bash: source <(netns-kit completion bash)
_netns_kit() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}} command= i
    COMPREPLY=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            --attach) ((i++));;
            -*) ;;
            *) command=${{COMP_WORDS[i]}}; break;;
        esac
    done
    if [[ -z $command ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "{top}" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "{" ".join(subs)}" -- "$cur"))
        fi
        return
    fi
    case "$command" in
{chr(10).join(cases)}
    esac
}}
complete -o filenames -F _netns_kit netns-kit
"""


def zsh(parser: argparse.ArgumentParser) -> str:
    return (
        "# netns-kit completion for zsh: source <(netns-kit completion zsh)\n"
        "autoload -U +X compinit && compinit\n"
        "autoload -U +X bashcompinit && bashcompinit\n" + bash(parser).split("\n", 1)[1]
    )


def fish(parser: argparse.ArgumentParser) -> str:
    subs = commands(parser)
    lines = ["# netns-kit completion for fish: netns-kit completion fish | source", "complete -c netns-kit -f"]
    for name, sub in subs.items():
        about = sub.description or ""
        lines.append(f"complete -c netns-kit -n __fish_use_subcommand -a {name} -d {shlex.quote(about)}")
        for action in options(sub):
            words = []
            for option in action.option_strings:
                words.append(f"-l {option[2:]}" if option.startswith("--") else f"-s {option[1:]}")
            if _takes_value(action):
                words.append(
                    f"-x -a {shlex.quote(' '.join(map(str, action.choices)))}"
                    if action.choices
                    else ("-r -F" if action.metavar in _FILES else "-x")
                )
            about = shlex.quote(action.help or "")
            lines.append(f"complete -c netns-kit -n '__fish_seen_subcommand_from {name}' {' '.join(words)} -d {about}")
        for action in sub._actions:
            if not action.option_strings and action.choices:
                choices = shlex.quote(" ".join(map(str, action.choices)))
                lines.append(f"complete -c netns-kit -n '__fish_seen_subcommand_from {name}' -x -a {choices}")
            elif not action.option_strings and action.metavar in _FILES:
                lines.append(f"complete -c netns-kit -n '__fish_seen_subcommand_from {name}' -F")
    return "\n".join(lines) + "\n"


SCRIPTS = {"bash": bash, "zsh": zsh, "fish": fish}


def cmd_completion(args: argparse.Namespace, out: TextIO) -> int:
    out.write(SCRIPTS[args.shell](args.parser))
    return EXIT_OK
