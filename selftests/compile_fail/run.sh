#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Typed topics of libpcb: a message of the wrong C type must be a compile
# error, not a warning.  Compiles every ok_*.c here (each must compile with
# -Wall -Wextra -Werror) and every fail_*.c (each must fail, and for the
# reason libpcb.h gives, not another), with each C compiler found among
# $CC, cc, gcc and clang.  Only checks syntax and types: writes no file.
#
# Prints kselftest-style TAP; exits 0 when all pass, 1 when one fails,
# 4 (skip) without a compiler.

cd "$(dirname "$0")" || exit 1
top=../..
flags="-std=gnu11 -Wall -Wextra -Werror -fsyntax-only -I$top/uapi -I$top/lib"
reason="message type does not match the type of the topic"
export LC_ALL=C

compilers=
for c in ${CC:-} cc gcc clang; do
	command -v "$c" >/dev/null 2>&1 || continue
	# One entry per distinct compiler (cc is usually gcc).
	id=$(readlink -f "$(command -v "$c")")
	case "$seen" in *"|$id|"*) continue ;; esac
	seen="$seen|$id|"
	compilers="$compilers $c"
done

[ -n "${KSFT_TAP_LEVEL:-}" ] || echo "TAP version 13"
if [ -z "$compilers" ]; then
	echo "1..0 # SKIP no C compiler found"
	echo "# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:1 error:0"
	exit 4
fi

n=0
for c in $compilers; do
	for f in ok_*.c fail_*.c; do
		n=$((n + 1))
	done
done
echo "1..$n"

n=0
pass=0
fail=0
for c in $compilers; do
	for f in ok_*.c fail_*.c; do
		n=$((n + 1))
		out=$("$c" $flags "$f" 2>&1)
		rc=$?
		case $f in
		ok_*)
			what="$c: $f compiles"
			[ $rc -eq 0 ] && ok=1 || ok=0
			;;
		fail_*)
			what="$c: $f is a compile error"
			ok=0
			if [ $rc -ne 0 ]; then
				case $out in
				*"$reason"*) ok=1 ;;
				*) what="$what, but not the typed-topic assertion" ;;
				esac
			fi
			;;
		esac
		if [ $ok -eq 1 ]; then
			echo "ok $n $what"
			pass=$((pass + 1))
		else
			echo "$out" | sed 's/^/# /'
			echo "not ok $n $what"
			fail=$((fail + 1))
		fi
	done
done

echo "# Totals: pass:$pass fail:$fail xfail:0 xpass:0 skip:0 error:0"
[ $fail -eq 0 ]
