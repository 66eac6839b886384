/*
 * {{name}}: a guest of hookd's lambda handler, as a WASI preview-1 command.
 * hookd writes the event data (JSON) on stdin; what this writes on stdout is
 * the result (the data for the next guest of the hook's chain, or the
 * chain's result). Exit code 0 is success; any other fails the delivery,
 * which is then retried, with what was written on stderr.
 *
 * With no JSON library at hand it does not parse the data: it checks that
 * the data is a JSON object (its first character is '{') and wraps it:
 *
 *   {"handled_by":"{{name}}","data":<stdin>}
 *
 * One line on stderr on success: hookd puts it in the server's log.
 */
#include <stdio.h>
#include <stdlib.h>

static const char NAME[] = "{{name}}";

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Reads all of stdin into a malloc'ed buffer; NULL on failure. */
static char *read_all(size_t *len) {
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
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0) {
            if (ferror(stdin)) { free(buf); return NULL; }
            break;
        }
    }
    *len = n;
    return buf;
}

int main(void) {
    size_t len = 0;
    char *data = read_all(&len);
    if (!data) {
        fprintf(stderr, "%s: cannot read the event data on stdin\n", NAME);
        return 2;
    }
    size_t first = 0, last = len;
    while (first < last && is_space(data[first])) first++;
    while (last > first && is_space(data[last - 1])) last--;
    if (first == last || data[first] != '{') {
        fprintf(stderr, "%s: the event data is not a JSON object\n", NAME);
        free(data);
        return 1;
    }

    printf("{\"handled_by\":\"%s\",\"data\":", NAME);
    fwrite(data + first, 1, last - first, stdout);
    fputs("}\n", stdout);
    free(data);
    if (fflush(stdout) != 0) return 2;
    fprintf(stderr, "%s: wrapped %zu bytes of event data\n", NAME, last - first);
    return 0;
}
