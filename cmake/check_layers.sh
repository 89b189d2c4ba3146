#!/usr/bin/env bash
# The include check of calq's layers (cmake/layers.txt): fails, naming every offending line, when a
# file of src/<room>/ or tools/calq/ (room "cli") includes a header of a room it may not use — a
# room of a higher layer, or a room of its own layer that the table does not list for it — or when
# a pattern reserved to one room ("only" lines: BLAS, LAPACK, oneDNN) appears in another.
# Needs bash, find, grep and a POSIX awk only (CI machines have no python3).
# The build runs it at configure time and before compiling; ctest runs it as layers.check.
# Usage: cmake/check_layers.sh SOURCE_ROOT [TABLE]      (TABLE: default SOURCE_ROOT/cmake/layers.txt)
set -euo pipefail
root=${1:?usage: check_layers.sh SOURCE_ROOT [TABLE]}
table=${2:-$root/cmake/layers.txt}
[ -f "$table" ] || { echo "check_layers: no table $table" >&2; exit 2; }

# Every source file of a room, as "<room> <path relative to root>".
files() {
  (cd "$root" && find src tools/calq -type f \( -name '*.h' -o -name '*.hpp' -o -name '*.cpp' -o -name '*.cc' \) 2>/dev/null | LC_ALL=C sort) |
    awk '{ if ($0 ~ /^tools\/calq\//) print "cli", $0; else { split($0, p, "/"); print (p[3] == "" ? "?" : p[2]), $0 } }'
}

# Lines "F <room> <file>" for every file and "I <room> <file> <line> <included path>" for its quoted
# includes.
scan() {
  files | while read -r room f; do
    echo "F $room $f"
    { grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$root/$f" || true; } |
      sed -E 's/^([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]*)".*/\1 \2/' |
      while read -r line inc; do echo "I $room $f $line $inc"; done
  done
}

only_scan() {
  awk '$1 == "only" { print $2 "\t" substr($0, index($0, $3)) }' "$table" | while IFS=$'\t' read -r owner re; do
    files | while read -r room f; do
      [ "$room" = "$owner" ] && continue
      { grep -nE -- "$re" "$root/$f" || true; } | while IFS=: read -r line text; do
        text=${text#"${text%%[![:space:]]*}"}; echo "$f:$line: '${text:0:72}' calls what only $owner/ may call (\"only $owner\" in cmake/layers.txt)"
      done
    done
  done
}

status=0
report=$(scan | awk -v table="$table" -v tname="${table#"$root"/}" '
  # ---- the table -----------------------------------------------------------------------------
  FILENAME == table {
    if ($0 ~ /^[[:space:]]*(#|$)/ || $1 == "only") next
    layer = $1; room = $2
    if (room in layer_of) { print table ": room " room " listed twice"; bad = 1; next }
    if (!(layer in layer_rank)) { layer_rank[layer] = ++nlayers }
    else if (layer != last_layer) { print table ": layer " layer " is not one block of lines"; bad = 1 }
    last_layer = layer
    layer_of[room] = layer
    for (i = 3; i <= NF; ++i) {
      if (!($i in layer_of) || layer_of[$i] != layer) {
        print table ": " room " may include " $i ", which is not an earlier room of layer " layer; bad = 1
      }
      allowed[room SUBSEP $i] = 1
    }
    next
  }
  # ---- the files and their includes ----------------------------------------------------------
  $1 == "F" {
    if (!($2 in layer_of)) unknown[$2] = $3
    next
  }
  $1 == "I" {
    room = $2; file = $3; line = $4; inc = $5
    if (!(room in layer_of)) { unknown[room] = file; next }
    if (inc ~ /^\.\.?\//) { print file ":" line ": relative include \"" inc "\" (include by room: \"<room>/<file>\")"; bad = 1; next }
    n = index(inc, "/")
    to = n ? substr(inc, 1, n - 1) : room
    if (to == room) next
    if (!(to in layer_of)) { print file ":" line ": includes \"" inc "\": " to " is no room of " tname; bad = 1; next }
    if (layer_rank[layer_of[to]] < layer_rank[layer_of[room]] || ((room SUBSEP to) in allowed)) next
    # Upward: into a higher layer, or against an edge of the table within the layer.
    up = (layer_rank[layer_of[to]] > layer_rank[layer_of[room]] || ((to SUBSEP room) in allowed)) ? "upward" : "sideways"
    print file ":" line ": " up " include \"" inc "\": " room " (" layer_of[room] ") may not include " to " (" layer_of[to] ")"
    bad = 1
  }
  END {
    for (r in unknown) { print unknown[r] ": room " r " is not in " tname; bad = 1 }
    exit bad
  }
' "$table" -) || status=1
only=$(only_scan)
[ -n "$only" ] && status=1
if [ "$status" != 0 ]; then
  { [ -n "$report" ] && echo "$report"; [ -n "$only" ] && echo "$only"; } >&2
  echo "check_layers: the layers of cmake/layers.txt are violated (docs/architecture.md)" >&2
  exit 1
fi
echo "check_layers: $(files | wc -l) files of $(awk '!/^[[:space:]]*(#|$)/ && $1 != "only"' "$table" | wc -l) rooms, no upward include"
