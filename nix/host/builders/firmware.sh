# Copies firmware files found on the build host (Debian's opensbi / u-boot packages) into the
# store under the names the board profile gives them. $files: "dest=source" per line.
source "$common"
mkdir -p "$out"
while IFS= read -r spec; do
  [ -n "$spec" ] || continue
  dest=${spec%%=*}; src=${spec#*=}
  if [ ! -r "$src" ]; then
    log "firmware file $src (for $dest) is missing on the build host: install the package named in the board profile"
    exit 1
  fi
  mkdir -p "$out/$(dirname "$dest")"
  cp "$src" "$out/$dest"
done <<< "$files"
