#!/usr/bin/env bash
# The docs test: every command of every ```sh block in README.md and docs/*.md runs as written.
#
# Usage: tests/docs_test.sh SOURCE_DIR BUILD_DIR [FILE.md ...]   (ctest: docs.commands)
#
# Each Markdown file's ```sh blocks become one bash script, run in a scratch copy of the
# repository's layout: SCRATCH/repo holds symbolic links to the repository's top-level entries,
# its build/ is BUILD_DIR (so `build/calq` and `export PATH=$PWD/build:$PATH` work), and
# SCRATCH/shared is the data pack ($CALQ_DATA, default SOURCE_DIR/../shared), so `../shared/...`
# resolves as it does from a checkout. Outputs land in the scratch folder, never in the repository.
# BUILD_DIR is also on PATH, so a bare `calq` runs the binary under test.
#
# Sizes: the docs write sizes as variables on lines made only of assignments (`N=128 T=512`); the
# test sets the variables named in $sizes to small values and drops the docs' assignments to them,
# keeping every other assignment (MODEL=..., M=...) as written.
#
# Skips: a command line carrying `# docs-test: skip (why)` is not run; the test counts and lists
# them. A `calq` or `scripts/` command in a fenced block that is not ```sh fails the test: every
# command the docs show is one the test runs (or lists as skipped).
#
# A failing command makes the file fail; the test prints FILE:LINE of the command and its output.
set -uo pipefail
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
shift 2
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  files=("$src/README.md")
  for f in "$src"/docs/*.md; do files+=("$f"); done
fi
data=${CALQ_DATA:-$src/../shared}
[ -d "$data" ] || { echo "docs test: no data pack at $data (set CALQ_DATA)"; exit 1; }
data=$(cd "$data" && pwd)

# The small sizes (the docs' variables): calibration samples and length, evaluation context,
# windows and task items.
export N=${N:-8} T=${T:-64} CTX=${CTX:-64} CHUNKS=${CHUNKS:-2} LIMIT=${LIMIT:-4}
sizes="N T CTX CHUNKS LIMIT"
export CALQ_PROGRESS=0 OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/calq-docs-test.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# Extracts FILE's ```sh blocks as a bash script on stdout. Every command starts with
# `__at=FILE:LINE`; assignments to the size variables are dropped; a skipped line becomes a
# `# docs-test-skipped FILE:LINE: ...` comment.
extract() {
  local file=$1 rel=$2
  awk -v rel="$rel" -v sizes="$sizes" '
    function assignments_only(s,   t, n, i, parts) {
      t = s; sub(/[ \t]*#.*$/, "", t); gsub(/;/, " ", t)
      if (t ~ /[`"'"'"'(){}]/) return 0
      n = split(t, parts, /[ \t]+/)
      for (i = 1; i <= n; i++) if (parts[i] != "" && parts[i] !~ /^[A-Za-z_][A-Za-z0-9_]*=/) return 0
      return t ~ /=/
    }
    function defaults(s,   t, out, n, i, parts, name, val) {
      t = s; sub(/[ \t]*#.*$/, "", t); gsub(/;/, " ", t)
      n = split(t, parts, /[ \t]+/); out = ""
      for (i = 1; i <= n; i++) {
        if (parts[i] == "") continue
        name = substr(parts[i], 1, index(parts[i], "=") - 1); val = substr(parts[i], index(parts[i], "=") + 1)
        out = out (index(" " sizes " ", " " name " ") ? ": size " name " from the test; " : name "=" val "; ")
      }
      return out
    }
    /^```/ {
      if (!inblock) { inblock = 1; lang = substr($0, 4); gsub(/[ \t]/, "", lang); next }
      inblock = 0; cont = 0; next
    }
    !inblock {  # an indented code block holding a command: it must be a ```sh block to be tested
      if ($0 ~ /^    +(\$ )?((\.\/)?build\/[a-z_]+|calq|scripts\/[^ ]*\.sh)( |$)/)
        printf "echo \"docs test: %s:%d: a command outside a \\`\\`\\`sh block (the test runs only those)\" >&2; __bad=1\n", rel, NR
      next
    }
    lang != "sh" {
      if ($0 ~ /^[ \t]*(\$ )?((build\/)?calq( |$)|scripts\/[^ ]*\.sh( |$))/)
        printf "echo \"docs test: %s:%d: a command outside a \\`\\`\\`sh block (the test runs only those)\" >&2; __bad=1\n", rel, NR
      next
    }
    {
      line = $0
      if (skipcont) { skipcont = (line ~ /\\$/); next }
      if (cont) { print line; cont = (line ~ /\\$/); next }
      if (line ~ /^[ \t]*(#.*)?$/) next
      if (line ~ /# docs-test: skip/) {
        why = line; sub(/.*# docs-test: skip[ \t]*/, "", why)
        cmd = line; sub(/[ \t]*# docs-test: skip.*$/, "", cmd)
        printf "# docs-test-skipped %s:%d: %s %s\n", rel, NR, cmd, why
        skipcont = (line ~ /\\$/)
        next
      }
      printf "__at=%s:%d\n", rel, NR
      if (assignments_only(line)) { print defaults(line); next }
      print line
      cont = (line ~ /\\$/)
    }
  ' "$file"
}

fail=0 ran=0 skipped=0
skiplist="$scratch/skipped.txt"
: > "$skiplist"
for f in "${files[@]}"; do
  rel=${f#"$src"/}
  name=$(echo "$rel" | tr '/.' '__')
  dir="$scratch/$name"
  mkdir -p "$dir/repo"
  ln -s "$data" "$dir/shared"
  for e in "$src"/* "$src"/.gitignore; do
    b=$(basename "$e")
    case "$b" in build* | out) continue ;; esac
    ln -s "$e" "$dir/repo/$b"
  done
  ln -s "$build" "$dir/repo/build"
  # The demo study's folder (studies/demo.toml: out = ../out/study-demo) is shared by all files:
  # README runs the study once; docs/report.md and docs/study.md find it finished in its cache.
  mkdir -p "$scratch/study-demo" "$dir/repo/out"
  ln -s "$scratch/study-demo" "$dir/repo/out/study-demo"
  script="$dir/docs.sh"
  {
    echo 'set -e'
    echo '__bad=0'
    echo "__at='$rel'"
    echo 'trap '"'"'echo "docs test: FAILED at $__at: $BASH_COMMAND" >&2'"'"' ERR'
    extract "$f" "$rel"
    echo '[ "$__bad" = 0 ]'
  } > "$script"
  sed -n 's/^# docs-test-skipped //p' "$script" >> "$skiplist"
  n=$(grep -c "^__at=[^']" "$script" || true)
  bad=$(grep -c '__bad=1$' "$script" || true)
  [ "$n" = 0 ] && [ "$bad" = 0 ] && continue
  ran=$((ran + n))
  start=$SECONDS
  if (cd "$dir/repo" && PATH="$build:$PATH" bash "$script") > "$dir/log" 2>&1; then
    echo "docs test: $rel: $n commands ok ($((SECONDS - start)) s)"
  else
    fail=1
    echo "docs test: $rel: FAILED ($((SECONDS - start)) s); its output:"
    tail -n 40 "$dir/log" | sed 's/^/    /'
  fi
done
skipped=$(wc -l < "$skiplist")
echo "docs test: $ran commands run, $skipped skipped:"
sed 's/^/    /' "$skiplist"
exit $fail
