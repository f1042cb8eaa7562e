#!/usr/bin/env bash
# README.md's options table must be exactly what the options table prints.
set -euo pipefail
tool=$1 readme=$2
want=$("$tool" --markdown)
have=$(sed -n '/<!-- options:begin -->/,/<!-- options:end -->/p' "$readme" | sed '1d;$d')
if [[ "$want" != "$have" ]]; then
    echo "README.md options table is out of date; regenerate it with:"
    echo "  scripts/update-readme-options"
    diff <(echo "$want") <(echo "$have") || true
    exit 1
fi
echo "README options table matches the library's table"
