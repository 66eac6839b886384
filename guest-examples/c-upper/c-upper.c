/*
 * c-upper: a WASI preview-1 *command* module (it has `_start`), the stdin /
 * stdout guest convention of DESIGN.md. It reads all of stdin (the event
 * JSON the host writes there) and writes one line of JSON on stdout:
 *
 *   {"c_guest":true,"input_bytes":N,"data":<stdin verbatim>,"upper":<stdin with every JSON string VALUE's ASCII letters uppercased>}
 *
 * N is the number of bytes read. "upper" keeps object keys and escape
 * sequences (\n, \u00e9, ...) as they were, so it is valid JSON whenever
 * stdin is. It does no JSON validation: stdin is assumed to be one JSON
 * value. Exit status 0 on success; when stdin is empty (or only whitespace)
 * it writes "c-upper: empty input on stdin" to stderr and exits 1; a read or
 * allocation failure exits 2. Used by the lambda handler's tests of preview-1
 * command modules (upload accepted, stdin/stdout/exit-code protocol, failure
 * on a non-zero exit). Build: clang --target=wasm32-wasi -O2 (build.sh).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Reads all of stdin into a malloc'ed buffer; returns NULL on failure. */
static char *read_all(FILE *in, size_t *len) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (n == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) { free(buf); return NULL; }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, in);
        n += got;
        if (got == 0) {
            if (ferror(in)) { free(buf); return NULL; }
            break;
        }
    }
    *len = n;
    return buf;
}

/* Writes s[0..len) with the contents of string values uppercased. */
static void write_upper(const char *s, size_t len, FILE *out) {
    size_t i = 0;
    while (i < len) {
        if (s[i] != '"') {
            fputc(s[i++], out);
            continue;
        }
        /* A string: find its closing quote, skipping escapes. */
        size_t end = i + 1;
        while (end < len && s[end] != '"') end += (s[end] == '\\') ? 2 : 1;
        if (end > len) end = len;
        /* A key is followed by ':' (after optional whitespace). */
        size_t k = end + 1;
        while (k < len && is_space(s[k])) k++;
        int is_key = k < len && s[k] == ':';
        fputc('"', out);
        for (size_t j = i + 1; j < end && j < len; j++) {
            char c = s[j];
            if (c == '\\') {
                /* copy the escape verbatim: \x, or \uXXXX */
                fputc(c, out);
                if (j + 1 < end) {
                    j++;
                    fputc(s[j], out);
                    if (s[j] == 'u')
                        for (int h = 0; h < 4 && j + 1 < end; h++) fputc(s[++j], out);
                }
                continue;
            }
            if (!is_key && c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
            fputc(c, out);
        }
        if (end < len) fputc('"', out);
        i = end + 1;
    }
}

int main(void) {
    size_t len = 0;
    char *in = read_all(stdin, &len);
    if (!in) {
        fputs("c-upper: cannot read stdin\n", stderr);
        return 2;
    }
    size_t first = 0;
    while (first < len && is_space(in[first])) first++;
    if (first == len) {
        fputs("c-upper: empty input on stdin\n", stderr);
        free(in);
        return 1;
    }
    /* trim trailing whitespace so the embedded value ends cleanly */
    size_t last = len;
    while (last > first && is_space(in[last - 1])) last--;

    printf("{\"c_guest\":true,\"input_bytes\":%zu,\"data\":", len);
    fwrite(in + first, 1, last - first, stdout);
    fputs(",\"upper\":", stdout);
    write_upper(in + first, last - first, stdout);
    fputs("}\n", stdout);
    free(in);
    if (fflush(stdout) != 0) return 2;
    return 0;
}
