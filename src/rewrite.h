/* rewrite.h: the rewrite phase (nginx's "rewrite REGEX REPLACEMENT FLAG")
 * and the captures ($1..$9, ${name}) of regex locations and rewrites, used
 * in rewrite replacements and in "return" targets (router.c). */
#ifndef PT_REWRITE_H
#define PT_REWRITE_H

#include "first.h"
#include "regex.h"

struct pt_req;
struct pt_location;

/* no flag: go on with the next rule on the new path, then look the
 * location up again if the path changed (as nginx) */
enum { PT_RW_NEXT, PT_RW_LAST, PT_RW_BREAK, PT_RW_REDIRECT, PT_RW_PERMANENT };

typedef struct pt_rewrite_rule {
    pt_regex *rx;
    char *repl; /* with $1..$9 and ${name} */
    int flag;
} pt_rewrite_rule;

typedef struct pt_rewrites {
    pt_rewrite_rule *rules;
    size_t n;
} pt_rewrites;

/* Parse "REGEX REPLACEMENT [last|break|redirect|permanent]" into r. 0, or
 * -1 with why (the PCRE2 error and its offset for a bad regex). */
int pt_rewrite_parse(const char *text, pt_rewrite_rule *r, char *why, size_t whylen);
void pt_rewrites_free(pt_rewrites *rw);

/* The length of the capture reference at t ("$1", "${name}"), 0 when t
 * starts none. */
size_t pt_rewrite_ref_len(const char *t);
/* Does every capture reference in t name a group of rx (NULL: a location
 * without a regex, where none may appear)? 0, or -1 with why. */
int pt_rewrite_check_refs(const char *t, const pt_regex *rx, char *why, size_t whylen);

/* The captures of one match, for expanding references. */
typedef struct pt_rewrite_caps {
    const pt_regex *rx; /* NULL: no match, every reference is empty */
    const char *s;
    long ov[2 * PT_REGEX_NCAPS];
} pt_rewrite_caps;

/* The captures of c's regex location against its path (k->rx NULL when
 * c->loc is no regex location or no longer matches). */
void pt_rewrite_loc_caps(const struct pt_req *r, pt_rewrite_caps *k);
/* Append the capture the reference at t (rlen bytes, pt_rewrite_ref_len)
 * names to out at at (cap bytes, room for the NUL kept), percent-encoding
 * what would change the meaning of a URI: '%', '?', '#', controls, space and
 * non-ASCII. Returns the new at. */
size_t pt_rewrite_put_ref(const pt_rewrite_caps *k, const char *t, size_t rlen, char *out,
                          size_t at, size_t cap);

/* The name below l->alias that a regex location's alias (l->alias_tmpl)
 * gives path (len bytes), with the captures inserted as they are, into buf
 * (cap bytes; "." for the directory itself): its length, or -1 when the
 * regex does not match path, the name is too long, or a segment would be
 * "..", or a dotfile under l's allow_dotfiles = false. */
long pt_rewrite_alias_rel(const struct pt_location *l, const char *path, size_t len, char *buf,
                          size_t cap);

typedef enum pt_rewrite_rc {
    PT_RWR_NONE,     /* no rule changed the path */
    PT_RWR_REROUTE,  /* new path and location: run the phases again */
    PT_RWR_BREAK,    /* new path, same location: on to try_files / the handler */
    PT_RWR_REDIRECT, /* answer *status with Location: out */
    PT_RWR_ERROR,    /* the new URI is invalid or too long: 500 */
} pt_rewrite_rc;

/* Run c->loc's rewrites on c->path (the decoded, normalised path). For
 * PT_RWR_REDIRECT the target is in out (cap bytes) and the status in
 * *status. */
pt_rewrite_rc pt_rewrite_run(struct pt_req *r, char *out, size_t cap, int *status);
/* The server-level rules rw (a vhost's or the top level's) on c->path,
 * before the location matters, as nginx's server rewrites: each matching
 * rule changes the path (and the location, pt_conn_reroute); "last" and
 * "break" end the list. PT_RWR_NONE, _REROUTE (the path changed: the
 * phases go on with its location), _REDIRECT or _ERROR as above. */
pt_rewrite_rc pt_rewrite_server(struct pt_req *r, const pt_rewrites *rw, char *out, size_t cap,
                                int *status);

#endif
