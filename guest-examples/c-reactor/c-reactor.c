/*
 * c-reactor: a WASI preview-1 module that is NOT a command. Built with
 * -mexec-model=reactor it has no `_start`, only `_initialize` and two exported
 * functions: `add(a, b) -> a + b` and `hello()`, which writes "hello from
 * c-reactor\n" to stdout (so the module really imports wasi_snapshot_preview1,
 * like any preview-1 guest). hookd accepts preview-1 modules only as commands
 * (stdin/stdout convention), so the Admin API tests upload this file to check
 * that such a module is rejected. Build: clang --target=wasm32-wasi -O2
 * -mexec-model=reactor (build.sh).
 */
#include <string.h>
#include <unistd.h>

__attribute__((export_name("add")))
int add(int a, int b) {
    return a + b;
}

__attribute__((export_name("hello")))
int hello(void) {
    static const char msg[] = "hello from c-reactor\n";
    return (int)write(STDOUT_FILENO, msg, strlen(msg));
}
