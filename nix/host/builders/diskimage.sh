# Builds the disk image: an MBR or GPT partition table made with sfdisk on a plain file and a
# filesystem image (ext4 via mkfs.ext4 -d, or FAT via mkfs.vfat + mcopy) written at its offset.
# No root and no loop device. Reproducible: fixed UUIDs, hash seed and timestamps.
source "$common"
export E2FSPROGS_FAKE_TIME=1
img="$TMPDIR/disk.img"
truncate -s "$sizeBytes" "$img"
sfdisk --quiet "$img" < "$layout"
# $parts: "index:offsetSectors:sizeSectors:fs:contentDir-or-file:label" per line ("-" = empty)
while IFS=: read -r idx start size fs content label; do
  [ -n "$idx" ] || continue
  part="$TMPDIR/part$idx.img"
  if [ "$content" = "-" ]; then content="$TMPDIR/empty"; mkdir -p "$content"; fi
  case "$fs" in
    ext4)
      truncate -s $((size * 512)) "$part"
      mkfs.ext4 -q -F -L "$label" -U "$fsUuid" -E "hash_seed=$fsUuid,root_owner=0:0" \
        -O ^has_journal,^metadata_csum_seed -d "$content" "$part"
      # mkfs -d stamps ctimes with the build time: reset them (touch cannot) for reproducibility.
      ( cd "$content" && find . | sort | while read -r f; do
          p="/${f#./}"; p="${p%/.}"; [ -n "$p" ] || p=/
          for field in ctime atime mtime crtime; do echo "sif \"$p\" $field @1"; done
        done ) > "$TMPDIR/times.cmd"
      debugfs -w -f "$TMPDIR/times.cmd" "$part" >/dev/null 2>&1
      ;;
    vfat)
      truncate -s $((size * 512)) "$part"
      mkfs.vfat -n "$label" -i 12345678 "$part" >/dev/null
      # FAT cannot store the store's 1970 timestamps: copy with a fixed 1980 date instead.
      cp -r "$content" "$TMPDIR/fat$idx"; chmod -R u+w "$TMPDIR/fat$idx"; content="$TMPDIR/fat$idx"
      find "$content" -exec touch -h -d '1980-01-02 00:00:00 UTC' {} +
      ( cd "$content" && find . -mindepth 1 -type d | sort | while read -r d; do mmd -i "$part" "::${d#./}"; done
        find . -type f | sort | while read -r f; do mcopy -m -i "$part" "$f" "::${f#./}"; done )
      ;;
    raw)
      cp "$content" "$part"
      [ "$(stat -c %s "$part")" -le $((size * 512)) ] || { log "$content does not fit partition $idx"; exit 1; }
      ;;
    *) log "unknown filesystem $fs"; exit 1 ;;
  esac
  dd if="$part" of="$img" bs=512 seek="$start" conv=notrunc,sparse status=none
done <<< "$parts"
mkdir -p "$out"
cp --sparse=always "$img" "$out/disk.img"
sfdisk --dump "$out/disk.img" > "$out/partitions.txt"
