#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install what building and testing pcb needs on Debian 12, and nothing that
# is already there: a no-op in about a second on a ready machine.
#
# Two kernels are needed side by side: Debian 12's 6.1 LTS and the 6.12 LTS
# from bookworm-backports, each with its headers (to build the module) and its
# image (to boot the test VM).  Backports are enabled with a second apt source
# whose URIs, components and key are copied from the system's own Debian
# source, so no mirror is named here.
#
# Usage: tools/deps.sh [--check]
#   --check  only report what is missing; exit 1 if anything is.
# Runs apt-get as root, through sudo when not root.

set -euo pipefail

packages=(
	make gcc libc6-dev perl
	linux-headers-amd64 linux-image-amd64 linux-source-6.1
	liburing-dev libbpf-dev bpftool clang llvm kmod dkms sparse
	qemu-system-x86 busybox-static cpio xz-utils pkg-config bpftrace
	libelf-dev zlib1g-dev python3 gnuplot-nox
	util-linux
	# The debug kernel (tools/vm/debug-kernel) is built from linux-source-6.1.
	bison flex bc libssl-dev tar
)
backports_list=/etc/apt/sources.list.d/pcb-backports.sources
debian_list=/etc/apt/sources.list.d/debian.sources

say() { echo "deps: $*" >&2; }

missing_packages()
{
	local pkg status
	for pkg in "${packages[@]}"; do
		status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
		[[ $status == ii* ]] || echo "$pkg"
	done
}

# Prints "yes" when a kernel of series $1 (e.g. 6.12) has both an image to
# boot and headers to build against.
have_kernel()
{
	local build kver
	for build in /lib/modules/"$1".*/build; do
		[[ -e $build/Makefile ]] || continue
		kver=${build%/build}
		kver=${kver##*/}
		[[ -f /boot/vmlinuz-$kver ]] && { echo yes; return; }
	done
	return 0
}

# Is /usr/src/linux-source-6.1.tar.* there (the package alone is not enough:
# someone may have deleted the tarball)?
have_source()
{
	compgen -G '/usr/src/linux-source-6.1.tar.*' >/dev/null && echo yes
	return 0
}

missing=$(missing_packages | tr '\n' ' ')
need61=$([[ $(have_kernel 6.1) ]] || echo yes)
need612=$([[ $(have_kernel 6.12) ]] || echo yes)
[[ $(have_source) ]] || missing+="linux-source-6.1 "
missing=$(echo "$missing" | tr ' ' '\n' | sort -u | tr '\n' ' ')
missing=${missing# }

if [[ -z ${missing// } && -z $need61 && -z $need612 ]]; then
	[[ ${1:-} == --check ]] && say "nothing missing"
	exit 0
fi

report()
{
	[[ -n ${missing// } ]] && say "missing packages: $missing"
	[[ -n $need61 ]] && say "missing: a 6.1 kernel image with its headers"
	[[ -n $need612 ]] && say "missing: a 6.12 kernel image with its headers (bookworm-backports)"
	return 0
}

report
[[ ${1:-} == --check ]] && exit 1

if [[ $(id -u) -eq 0 ]]; then
	sudo=()
elif command -v sudo >/dev/null; then
	sudo=(sudo)
else
	say "not root and no sudo: install the above as root"
	exit 1
fi

apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get
     -y -q -o Dpkg::Use-Pty=0 --no-install-recommends)

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")

# Print a deb822 stanza for $codename-backports built from the first stanza
# of the system's Debian source that serves $codename itself (not the
# security archive).
backports_stanza()
{
	if [[ -r $debian_list ]]; then
		awk -v suite="$codename" -v bpo="$codename-backports" '
			function flush() {
				if (!done && uris != "" && suites ~ ("(^| )" suite "( |$)") &&
				    uris !~ /security/) {
					print "Types: deb"
					print "URIs: " uris
					print "Suites: " bpo
					print "Components: " comps
					if (key != "")
						print "Signed-By: " key
					done = 1
				}
				uris = suites = comps = key = ""
			}
			/^[ \t]*$/ { flush(); next }
			/^#/ { next }
			/^URIs:/ { sub(/^URIs:[ \t]*/, ""); uris = $0 }
			/^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
			/^Components:/ { sub(/^Components:[ \t]*/, ""); comps = $0 }
			/^Signed-By:/ { sub(/^Signed-By:[ \t]*/, ""); key = $0 }
			END { flush() }
		' "$debian_list"
	elif [[ -r /etc/apt/sources.list ]]; then
		# One-line format: "deb [options] URI SUITE COMPONENTS..."
		awk -v suite="$codename" -v bpo="$codename-backports" '
			$1 == "deb" && !done {
				i = 2
				if ($i ~ /^\[/) while ($i !~ /\]$/) i++
				if ($i ~ /^\[/ || $i ~ /\]$/) i++
				if ($(i + 1) != suite || $i ~ /security/) next
				comps = ""
				for (j = i + 2; j <= NF; j++) comps = comps (comps ? " " : "") $j
				print "Types: deb"
				print "URIs: " $i
				print "Suites: " bpo
				print "Components: " comps
				done = 1
			}' /etc/apt/sources.list
	fi
}

if [[ -n $need612 ]]; then
	stanza=$(backports_stanza)
	if [[ -z $stanza ]]; then
		say "cannot find the system's Debian apt source to derive backports from"
		exit 1
	fi
	if ! [[ -r $backports_list ]] || [[ $(cat "$backports_list") != "$stanza" ]]; then
		say "enabling $codename-backports in $backports_list"
		printf '%s\n' "$stanza" | "${sudo[@]}" tee "$backports_list" >/dev/null
	fi
fi

say "apt-get update"
"${apt[@]}" update

# The 6.1 kernel is named through the newest non-backports version of the
# linux-image-amd64 metapackage: once backports are in, the metapackage
# itself may already point at 6.12.
series61_package()
{
	apt-cache show "$1" 2>/dev/null | awk '
		/^Version:/ { v = $2 }
		/^Depends:/ && v !~ /bpo/ { sub(/^Depends:[ \t]*/, ""); sub(/[ ,(].*/, ""); print v, $0 }
	' | sort -V | tail -n 1 | cut -d' ' -f2
}

install=($missing)
if [[ -n $need61 ]]; then
	for meta in linux-image-amd64 linux-headers-amd64; do
		pkg=$(series61_package "$meta")
		[[ -n $pkg ]] || { say "no 6.1 kernel package found for $meta"; exit 1; }
		install+=("$pkg")
	done
fi
if [[ ${#install[@]} -gt 0 ]]; then
	say "apt-get install ${install[*]}"
	"${apt[@]}" install "${install[@]}"
fi
if [[ -n $need612 ]]; then
	say "apt-get install -t $codename-backports linux-image-amd64 linux-headers-amd64"
	"${apt[@]}" install -t "$codename-backports" linux-image-amd64 linux-headers-amd64
fi

# Check the result the same way as at the start.
missing=$(missing_packages | tr '\n' ' ')
[[ $(have_source) ]] || missing+="linux-source-6.1 "
need61=$([[ $(have_kernel 6.1) ]] || echo yes)
need612=$([[ $(have_kernel 6.12) ]] || echo yes)
if [[ -n ${missing// } || -n $need61 || -n $need612 ]]; then
	say "still missing after installing:"
	report
	exit 1
fi
say "done"
