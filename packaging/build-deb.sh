#!/bin/sh
# build-deb.sh - builds tassa_<version>_<arch>.deb from a CMake build directory with Debian's
# own tools: cmake --install into a staging tree (prefix /usr), dpkg-shlibdeps for the
# library dependencies, dpkg-deb (under fakeroot when not root) for the archive.
#
#   packaging/build-deb.sh BUILD_DIR OUT_DIR
#
# /etc/tassa/tassa.env is a conffile: dpkg keeps an operator's edits on upgrade. The
# maintainer scripts enable and (re)start tassa.service where systemd runs.
set -eu
build=$(cd "$1" && pwd)
out=$(mkdir -p "$2" && cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
arch=$(dpkg --print-architecture)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage="$work/stage"

# The tests package the binary under test as it is: rebuilding it there could relink it while
# other tests run it (TASSA_DEB_NO_BUILD=1).
if [ "${TASSA_DEB_NO_BUILD:-}" != 1 ]; then
  cmake --build "$build" --target tassa tassa_docs >/dev/null
fi
DESTDIR="$stage" cmake --install "$build" --prefix /usr >/dev/null
gzip -9n "$stage/usr/share/man/man1/tassa.1"
mkdir -p "$stage/usr/share/doc/tassa"
cp "$here/copyright" "$stage/usr/share/doc/tassa/copyright"

# dpkg-shlibdeps reads debian/control of the current directory
mkdir -p "$work/src/debian"
printf 'Source: tassa\n\nPackage: tassa\nArchitecture: any\n' > "$work/src/debian/control"
deps=$(cd "$work/src" && dpkg-shlibdeps -O "$stage/usr/bin/tassa" 2>/dev/null |
       sed -n 's/^shlibs:Depends=//p')

mkdir -p "$stage/DEBIAN"
size=$(du -sk "$stage/usr" "$stage/etc" | awk '{s += $1} END {print s}')
cat > "$stage/DEBIAN/control" <<CONTROL
Package: tassa
Version: $version
Architecture: $arch
Maintainer: tassa maintainers <tassa@localhost>
Installed-Size: $size
Depends: $deps
Section: net
Priority: optional
Homepage: https://localhost/tassa
Description: contact-center task routing and live status
 tassa serves Twilio's TaskRouter and Sync dialect, the seed's functions and
 the queue pages from one self-contained binary, as a hardened systemd service.
CONTROL
echo /etc/tassa/tassa.env > "$stage/DEBIAN/conffiles"
for script in postinst prerm postrm; do
  install -m 0755 "$here/deb/$script" "$stage/DEBIAN/$script"
done

deb="$out/tassa_${version}_${arch}.deb"
if [ "$(id -u)" = 0 ]; then
  dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
else
  fakeroot dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
fi
echo "$deb"
