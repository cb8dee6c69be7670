#!/usr/bin/env bash
#  Installs the build into a temporary prefix and builds a program against
#  libketenpost the way a partner's integrator would: through pkg-config.
#  Usage: install_check.sh BUILD_DIR
set -euo pipefail
build=$1
prefix=$(mktemp -d /tmp/kp-install-XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
pc_dir=$(dirname "$(find "$prefix" -name ketenpost.pc | head -n 1)")
export PKG_CONFIG_PATH=$pc_dir
cat > "$prefix/hello.c" <<'C'
#include <ketenpost.h>
#include <stdio.h>
#include <string.h>
int main (void)
{
    kp_msg_t *msg = kp_msg_new ("signal", "municipality:GM0153");
    if (!msg || kp_msg_set_body_json (msg, "{\"urgency\":\"ACUTE\"}") != 0)
        return 1;
    int ok = strcmp (kp_msg_type (msg), "signal") == 0;
    kp_msg_destroy (&msg);
    puts (ok? "libketenpost ok": "libketenpost broken");
    return ok? 0: 1;
}
C
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror "$prefix/hello.c" -o "$prefix/hello" $(pkg-config --cflags --libs ketenpost)
LD_LIBRARY_PATH=$(pkg-config --variable=libdir ketenpost) "$prefix/hello"
for program in ketenpostd kp-keys kp-send kp-inbox; do
    "$prefix/bin/$program" --help >/dev/null
done
echo "install_check: programs, header, library and pkg-config file work"
