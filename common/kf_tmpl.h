/* kf_tmpl: message templates, UTF-8 aware (DOMAIN §0 "Templates").
 *
 * A template is UTF-8 text with {name} placeholders ({buyer}, {shop}, {item}, {order_time},
 * {deadline}, {carrier}, {tracking_no}, or any key the caller gives); "{{" and "}}" are
 * literal braces. An sms is at most 70 Unicode characters (not bytes), marketing sms end
 * with the opt-out suffix, and an item title that would overflow is shortened with "…" on
 * a character boundary. Pure functions: no I/O, no global state. */
#ifndef KF_TMPL_H
#define KF_TMPL_H

#include <stdbool.h>
#include <stddef.h>

#define KF_TMPL_SMS_MAX 70            /* characters, the default sms limit */
#define KF_TMPL_OPTOUT "拒收请回复R"  /* appended to every marketing sms */
#define KF_TMPL_ELLIPSIS "…"          /* U+2026: one character, three bytes */
#define KF_TMPL_ITEM_MIN 2            /* an item is never shortened below 2 characters */
#define KF_TMPL_BUYER_HEAD 7          /* the buyer's name within the first 7 characters */

typedef struct {
    const char *key;   /* placeholder name without braces, e.g. "buyer" */
    const char *value; /* UTF-8 text; NULL = known but without a value (an error if used) */
} kf_tmpl_var_t;

/* Copies at most max_chars characters of s into out, never cutting inside a UTF-8
 * sequence; when something was left off, the last character kept is "…" (it counts as
 * one of the max_chars). out is always NUL-terminated and never written past outlen (a
 * buffer too small also cuts, with "…" when at least 4 bytes are left). Returns the number
 * of characters written. */
size_t kf_utf8_truncate(const char *s, size_t max_chars, char *out, size_t outlen);

/* Replaces every {name} with the value of the first var whose key is name. Errors (NULL,
 * reason in err): template or a used value not valid UTF-8, an unknown placeholder (named
 * in err), a placeholder whose value is NULL, "{}", a "{" without "}", a single "}".
 * Returns malloc'd text the caller frees. */
char *kf_tmpl_render(const char *tmpl, const kf_tmpl_var_t *vars, size_t nvars, char *err,
                     size_t errlen);

/* Renders an sms of at most max_chars characters, KF_TMPL_OPTOUT appended when marketing
 * (counted in the limit). Too long: only the {item} value is shortened, with "…", to the
 * longest length that fits; if even a KF_TMPL_ITEM_MIN-character item does not fit, NULL
 * and err says by how many characters it is over. Returns malloc'd text.
 * The four elements are not enforced here (not every kind has them all): the caller checks
 * the result with kf_tmpl_sms_has_elements(). */
char *kf_tmpl_sms(const char *tmpl, const kf_tmpl_var_t *vars, size_t nvars, bool marketing,
                  size_t max_chars, char *err, size_t errlen);

/* The four elements of an sms (seed 004 §1.2.6): buyer's name entirely within the first
 * KF_TMPL_BUYER_HEAD characters; the shop name and the order time anywhere; the item either
 * in full (item_prefix occurs) or as kf_tmpl_sms shortened it (a leading part of item_prefix
 * followed by "…"). Pass the full item title, or a prefix of it. Any argument NULL or empty,
 * or sms not valid UTF-8: false. */
bool kf_tmpl_sms_has_elements(const char *sms, const char *buyer, const char *shop,
                              const char *item_prefix, const char *order_time);

/* Built-in default template for kind ("payment_reminder", "logistics_overdue_shipping",
 * "care_shipped", ... as the action reasons of DESIGN), channel ("im", "sms", "phone": a
 * script for the agent) and technique (payment_reminder: "urgency", "privilege",
 * "verification", "repeat"; the other kinds have none). technique NULL or "" gives the
 * kind's first technique. NULL when there is no such default. Static text. */
const char *kf_tmpl_default(const char *kind, const char *channel, const char *technique);

/* Walks the default table: fills the row i and returns true, false past the end. */
bool kf_tmpl_default_at(size_t i, const char **kind, const char **channel,
                        const char **technique, const char **text);

#endif
