# Shared shell functions for the project's scripts (sourced): the Debian mirror this machine's
# apt uses, and downloads of packages for other architectures or suites through a private apt
# configuration (its own sources list, state and cache), which never touches the machine's dpkg
# architectures or apt state.

# Prints the mirror URI of the machine's Debian sources, or fails.
debian_mirror() {
  local m=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1=="deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list)
  fi
  [ -n "$m" ] || { echo "no Debian mirror found in /etc/apt/sources.list(.d)" >&2; return 1; }
  printf '%s\n' "$m"
}

# private_apt_download WORKDIR ARCHS SUITE COMPONENTS DESTDIR PKG...
#   ARCHS is comma-separated (the first is the primary one); PKG may carry :arch.
#   Downloads the .deb files into DESTDIR. Retries the index update three times.
private_apt_download() {
  local work=$1 archs=$2 suite=$3 comps=$4 dest=$5; shift 5
  local mirror; mirror=$(debian_mirror) || return 1
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts" "$work/prefs" "$dest"
  : > "$work/status"
  echo "deb [arch=$archs signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite $comps" \
    > "$work/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=$work/parts"
              -o "Dir::Etc::PreferencesParts=$work/prefs" -o "Dir::State::Lists=$work/lists"
              -o "Dir::State::status=$work/status" -o "Dir::Cache=$work/cache"
              -o "APT::Architecture=${archs%%,*}" -o "APT::Architectures=$archs"
              -o Acquire::Languages=none -o Debug::NoLocking=1)
  # Downloads land in a directory the _apt user may not be able to write.
  if [ "$(id -u)" -eq 0 ]; then opts+=(-o APT::Sandbox::User=root); fi
  local i
  for i in 1 2 3; do
    apt-get -qq "${opts[@]}" update && break
    [ "$i" = 3 ] && return 1
    sleep 5
  done
  (cd "$dest" && apt-get -qq "${opts[@]}" download "$@")
}
