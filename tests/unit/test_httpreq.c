/* SPDX-License-Identifier: MIT */
/* Unit tests for proto/httpreq: request heads, keep-alive rules, pipelining, every error. */
#include "httpreq.h"

#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define MAX_HEAD 8192

/* Each parse copies its input into a heap block of exactly its length, so an ASan build catches
 * any read past the end; the block lives until the next parse (or the group teardown). */
static char *last_buf;

static httpreq_err_t parse_n(const char *s, size_t len, size_t max, httpreq_t *out)
{
    free(last_buf);
    last_buf = malloc(len ? len : 1);
    assert_non_null(last_buf);
    memcpy(last_buf, s, len);
    return httpreq_parse(last_buf, len, max, out);
}

static httpreq_err_t parse(const char *s, httpreq_t *out)
{
    return parse_n(s, strlen(s), MAX_HEAD, out);
}

static httpreq_err_t parse_err(const char *s)
{
    httpreq_t out;
    return parse(s, &out);
}

static int free_last(void **state)
{
    (void)state;
    free(last_buf);
    last_buf = NULL;
    return 0;
}

#define assert_span(ptr, len, lit)                                                                 \
    do {                                                                                           \
        assert_int_equal((len), sizeof(lit) - 1);                                                  \
        assert_memory_equal((ptr), (lit), sizeof(lit) - 1);                                        \
    } while (0)

/* ---- accepted requests ---- */

static void get_with_query(void **state)
{
    (void)state;
    httpreq_t r;
    const char *req = "GET /announce?info_hash=x&port=1 HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(parse(req, &r), HTTPREQ_OK);
    assert_span(r.path, r.path_len, "/announce");
    assert_span(r.query, r.query_len, "info_hash=x&port=1");
    assert_int_equal(r.minor_version, 1);
    assert_true(r.keep_alive);
    assert_null(r.forwarded_for);
    assert_int_equal(r.head_len, strlen(req));
}

static void get_without_query(void **state)
{
    (void)state;
    httpreq_t r;
    assert_int_equal(parse("GET /scrape HTTP/1.1\r\n\r\n", &r), HTTPREQ_OK);
    assert_span(r.path, r.path_len, "/scrape");
    assert_null(r.query);
    assert_int_equal(r.query_len, 0);
}

static void empty_query_is_present_but_empty(void **state)
{
    (void)state;
    httpreq_t r;
    assert_int_equal(parse("GET /announce? HTTP/1.1\r\n\r\n", &r), HTTPREQ_OK);
    assert_span(r.path, r.path_len, "/announce");
    assert_non_null(r.query);
    assert_int_equal(r.query_len, 0);
}

static void query_split_at_first_question_mark(void **state)
{
    (void)state;
    httpreq_t r;
    assert_int_equal(parse("GET /a?b?c HTTP/1.1\r\n\r\n", &r), HTTPREQ_OK);
    assert_span(r.path, r.path_len, "/a");
    assert_span(r.query, r.query_len, "b?c");
}

static void bare_lf_line_ends(void **state)
{
    (void)state;
    httpreq_t r;
    const char *req = "GET /announce?a=1 HTTP/1.1\nHost: t\nConnection: close\n\n";
    assert_int_equal(parse(req, &r), HTTPREQ_OK);
    assert_int_equal(r.head_len, strlen(req));
    assert_false(r.keep_alive);
}

static void mixed_line_ends(void **state)
{
    (void)state;
    httpreq_t r;
    const char *req = "GET / HTTP/1.1\r\nHost: t\n\r\n";
    assert_int_equal(parse(req, &r), HTTPREQ_OK);
    assert_int_equal(r.head_len, strlen(req));
}

static void leading_empty_lines_skipped(void **state)
{
    (void)state;
    httpreq_t r;
    const char *req = "\r\n\nGET /x HTTP/1.1\r\n\r\n";
    assert_int_equal(parse(req, &r), HTTPREQ_OK);
    assert_span(r.path, r.path_len, "/x");
    assert_int_equal(r.head_len, strlen(req));
}

static void raw_high_bytes_in_target_accepted(void **state)
{
    (void)state;
    httpreq_t r;
    assert_int_equal(parse("GET /announce?info_hash=\x80\xff HTTP/1.1\r\n\r\n", &r), HTTPREQ_OK);
    assert_span(r.query, r.query_len, "info_hash=\x80\xff");
}

static void pipelined_requests(void **state)
{
    (void)state;
    const char two[] = "GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b?x HTTP/1.1\r\n\r\n";
    httpreq_t r;
    assert_int_equal(parse_n(two, sizeof(two) - 1, MAX_HEAD, &r), HTTPREQ_OK);
    assert_int_equal(r.head_len, 28);
    assert_span(r.path, r.path_len, "/a");
    const char *rest = two + r.head_len;
    assert_int_equal(parse_n(rest, sizeof(two) - 1 - 28, MAX_HEAD, &r), HTTPREQ_OK);
    assert_span(r.path, r.path_len, "/b");
    assert_span(r.query, r.query_len, "x");
    assert_int_equal(r.head_len, sizeof(two) - 1 - 28);
}

static void pipelined_second_incomplete(void **state)
{
    (void)state;
    const char two[] = "GET /a HTTP/1.1\r\n\r\nGET /b HTT";
    httpreq_t r;
    assert_int_equal(parse_n(two, sizeof(two) - 1, MAX_HEAD, &r), HTTPREQ_OK);
    assert_int_equal(r.head_len, 19);
    assert_int_equal(parse_n(two + 19, sizeof(two) - 1 - 19, MAX_HEAD, &r), HTTPREQ_INCOMPLETE);
}

static void head_exactly_max_head_accepted(void **state)
{
    (void)state;
    const char *req = "GET / HTTP/1.1\r\n\r\n"; /* 18 bytes */
    httpreq_t r;
    assert_int_equal(parse_n(req, 18, 18, &r), HTTPREQ_OK);
    assert_int_equal(r.head_len, 18);
}

/* ---- keep-alive ---- */

static void http11_default_keep_alive(void **state)
{
    (void)state;
    httpreq_t r;
    assert_int_equal(parse("GET / HTTP/1.1\r\n\r\n", &r), HTTPREQ_OK);
    assert_true(r.keep_alive);
}

static void http11_connection_close(void **state)
{
    (void)state;
    httpreq_t r;
    assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &r), HTTPREQ_OK);
    assert_false(r.keep_alive);
}

static void connection_token_list_case_insensitive(void **state)
{
    (void)state;
    httpreq_t r;
    assert_int_equal(parse("GET / HTTP/1.1\r\nconnection:  TE ,CLOSE\t\r\n\r\n", &r), HTTPREQ_OK);
    assert_false(r.keep_alive);
}

static void connection_close_in_second_header(void **state)
{
    (void)state;
    httpreq_t r;
    assert_int_equal(
        parse("GET / HTTP/1.1\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", &r),
        HTTPREQ_OK);
    assert_false(r.keep_alive);
}

static void connection_closed_is_not_close(void **state)
{
    (void)state;
    httpreq_t r;
    assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: closed, xclose\r\n\r\n", &r), HTTPREQ_OK);
    assert_true(r.keep_alive);
}

static void http10_default_close(void **state)
{
    (void)state;
    httpreq_t r;
    assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &r), HTTPREQ_OK);
    assert_int_equal(r.minor_version, 0);
    assert_false(r.keep_alive);
}

static void http10_keep_alive_requested(void **state)
{
    (void)state;
    httpreq_t r;
    assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r), HTTPREQ_OK);
    assert_true(r.keep_alive);
}

static void http10_keep_alive_and_close(void **state)
{
    (void)state;
    httpreq_t r;
    assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", &r),
                     HTTPREQ_OK);
    assert_false(r.keep_alive);
}

/* ---- forwarded-for ---- */

static void x_forwarded_for_captured(void **state)
{
    (void)state;
    httpreq_t r;
    assert_int_equal(parse("GET / HTTP/1.1\r\nX-Forwarded-For:  203.0.113.7 \r\n\r\n", &r),
                     HTTPREQ_OK);
    assert_span(r.forwarded_for, r.forwarded_for_len, "203.0.113.7");
}

static void x_forwarded_for_first_one_kept(void **state)
{
    (void)state;
    httpreq_t r;
    assert_int_equal(parse("GET / HTTP/1.1\r\nx-forwarded-for: 2001:db8::1\r\n"
                           "X-FORWARDED-FOR: 198.51.100.1\r\n\r\n",
                           &r),
                     HTTPREQ_OK);
    assert_span(r.forwarded_for, r.forwarded_for_len, "2001:db8::1");
}

static void x_real_ip_fallback(void **state)
{
    (void)state;
    httpreq_t r;
    assert_int_equal(parse("GET / HTTP/1.1\r\nX-Real-IP: 192.0.2.5\r\n\r\n", &r), HTTPREQ_OK);
    assert_span(r.forwarded_for, r.forwarded_for_len, "192.0.2.5");
}

static void x_forwarded_for_beats_x_real_ip(void **state)
{
    (void)state;
    httpreq_t r;
    assert_int_equal(parse("GET / HTTP/1.1\r\nX-Real-IP: 192.0.2.5\r\n"
                           "X-Forwarded-For: 192.0.2.9\r\n\r\n",
                           &r),
                     HTTPREQ_OK);
    assert_span(r.forwarded_for, r.forwarded_for_len, "192.0.2.9");
}

/* ---- incomplete and too large ---- */

static void empty_buffer_incomplete(void **state)
{
    (void)state;
    httpreq_t r;
    assert_int_equal(parse_n("", 0, MAX_HEAD, &r), HTTPREQ_INCOMPLETE);
}

static void partial_request_line_incomplete(void **state)
{
    (void)state;
    assert_int_equal(parse_err("GET /announce?info_ha"), HTTPREQ_INCOMPLETE);
}

static void partial_method_incomplete(void **state)
{
    (void)state;
    assert_int_equal(parse_err("PO"), HTTPREQ_INCOMPLETE);
}

static void head_without_blank_line_incomplete(void **state)
{
    (void)state;
    assert_int_equal(parse_err("GET / HTTP/1.1\r\nHost: t\r\n"), HTTPREQ_INCOMPLETE);
    assert_int_equal(parse_err("GET / HTTP/1.1\r\nHost: t\r\n\r"), HTTPREQ_INCOMPLETE);
    assert_int_equal(parse_err("GET / HTTP/1.1\r\nHost: t"), HTTPREQ_INCOMPLETE);
}

static void every_prefix_is_incomplete(void **state)
{
    (void)state;
    const char req[] = "GET /announce?a=b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    httpreq_t r;
    for (size_t n = 0; n < sizeof(req) - 1; n++)
        assert_int_equal(parse_n(req, n, MAX_HEAD, &r), HTTPREQ_INCOMPLETE);
    assert_int_equal(parse_n(req, sizeof(req) - 1, MAX_HEAD, &r), HTTPREQ_OK);
}

static void no_terminator_at_max_head_too_large(void **state)
{
    (void)state;
    httpreq_t r;
    const char *req = "GET / HTTP/1.1\r\nHost: t\r\n"; /* 25 bytes */
    assert_int_equal(parse_n(req, 25, 25, &r), HTTPREQ_ERR_TOO_LARGE);
    assert_int_equal(parse_n(req, 25, 26, &r), HTTPREQ_INCOMPLETE);
}

static void terminator_past_max_head_too_large(void **state)
{
    (void)state;
    httpreq_t r;
    const char *req = "GET / HTTP/1.1\r\n\r\n"; /* 18 bytes */
    assert_int_equal(parse_n(req, 18, 17, &r), HTTPREQ_ERR_TOO_LARGE);
}

static void long_request_line_too_large(void **state)
{
    (void)state;
    char buf[300];
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', sizeof(buf) - 5);
    httpreq_t r;
    assert_int_equal(parse_n(buf, sizeof(buf), 256, &r), HTTPREQ_ERR_TOO_LARGE);
}

/* ---- method, version, body ---- */

static void post_rejected(void **state)
{
    (void)state;
    assert_int_equal(parse_err("POST /announce HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"),
                     HTTPREQ_ERR_METHOD);
}

static void head_method_rejected(void **state)
{
    (void)state;
    assert_int_equal(parse_err("HEAD /announce HTTP/1.1\r\n\r\n"), HTTPREQ_ERR_METHOD);
}

static void lowercase_get_rejected(void **state)
{
    (void)state;
    assert_int_equal(parse_err("get / HTTP/1.1\r\n\r\n"), HTTPREQ_ERR_METHOD);
}

static void method_rejected_once_request_line_complete(void **state)
{
    (void)state;
    assert_int_equal(parse_err("DELETE / HTTP/1.1\r\nHost:"), HTTPREQ_ERR_METHOD);
    assert_int_equal(parse_err("DELETE / HTTP/1.1"), HTTPREQ_INCOMPLETE);
}

static void http2_version_rejected(void **state)
{
    (void)state;
    assert_int_equal(parse_err("GET / HTTP/2.0\r\n\r\n"), HTTPREQ_ERR_VERSION);
    assert_int_equal(parse_err("GET / HTTP/1.2\r\n\r\n"), HTTPREQ_ERR_VERSION);
}

static void malformed_version_syntax(void **state)
{
    (void)state;
    assert_int_equal(parse_err("GET / HTTP/1.1x\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
    assert_int_equal(parse_err("GET / HTTP/1\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
    assert_int_equal(parse_err("GET / http/1.1\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
    assert_int_equal(parse_err("GET /\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
}

static void content_length_zero_accepted(void **state)
{
    (void)state;
    assert_int_equal(parse_err("GET / HTTP/1.1\r\nContent-Length: 00\r\n\r\n"), HTTPREQ_OK);
}

static void content_length_body_rejected(void **state)
{
    (void)state;
    assert_int_equal(parse_err("GET / HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello"),
                     HTTPREQ_ERR_BODY);
}

static void content_length_invalid_syntax(void **state)
{
    (void)state;
    assert_int_equal(parse_err("GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"),
                     HTTPREQ_ERR_SYNTAX);
    assert_int_equal(parse_err("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
    assert_int_equal(parse_err("GET / HTTP/1.1\r\nContent-Length:\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
    assert_int_equal(parse_err("GET / HTTP/1.1\r\nContent-Length: 0, 0\r\n\r\n"),
                     HTTPREQ_ERR_SYNTAX);
}

static void transfer_encoding_rejected(void **state)
{
    (void)state;
    assert_int_equal(parse_err("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
                     HTTPREQ_ERR_BODY);
}

/* ---- syntax ---- */

static void target_must_start_with_slash(void **state)
{
    (void)state;
    assert_int_equal(parse_err("GET announce HTTP/1.1\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
    assert_int_equal(parse_err("GET http://t/announce HTTP/1.1\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
}

static void nul_in_request_line(void **state)
{
    (void)state;
    const char req[] = "GET /a\0b HTTP/1.1\r\n\r\n";
    httpreq_t r;
    assert_int_equal(parse_n(req, sizeof(req) - 1, MAX_HEAD, &r), HTTPREQ_ERR_SYNTAX);
}

static void control_chars_in_request_line(void **state)
{
    (void)state;
    assert_int_equal(parse_err("GET /a\tb HTTP/1.1\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
    assert_int_equal(parse_err("GET /a\x7f HTTP/1.1\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
    assert_int_equal(parse_err("GET /a\rb HTTP/1.1\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
    assert_int_equal(parse_err("GET / HTTP/1.1\r\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
}

/* The target and header values are checked eight bytes at a time: a bad byte must be found at
 * every offset within a word, and high bytes must not be mistaken for bad ones. */
static void control_byte_at_every_offset_rejected(void **state)
{
    (void)state;
    static const char bad[] = {'\0', '\x01', '\t', '\x1f', '\x7f'};
    char req[64];
    httpreq_t r;
    for (size_t b = 0; b < sizeof(bad); b++) {
        for (size_t pos = 5; pos < 5 + 20; pos++) {
            memcpy(req, "GET /aaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n", 41);
            req[pos] = bad[b];
            assert_int_equal(parse_n(req, 41, MAX_HEAD, &r), HTTPREQ_ERR_SYNTAX);
            if (bad[b] == '\t')
                continue; /* allowed in a header value */
            memcpy(req, "GET / HTTP/1.1\r\nX: 0123456789abcdefghijklmn\r\n\r\n", 47);
            req[pos + 15] = bad[b];
            assert_int_equal(parse_n(req, 47, MAX_HEAD, &r), HTTPREQ_ERR_SYNTAX);
        }
    }
}

static void high_bytes_at_every_offset_accepted(void **state)
{
    (void)state;
    char req[64];
    httpreq_t r;
    for (unsigned c = 0x80; c <= 0xff; c++) {
        memcpy(req, "GET /aaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nX: 0123456789abcdef\r\n\r\n", 62);
        memset(req + 5, (int)c, 3);
        memset(req + 14, (int)c, 9);
        memset(req + 46, (int)c, 5);
        assert_int_equal(parse_n(req, 62, MAX_HEAD, &r), HTTPREQ_OK);
    }
}

static void extra_spaces_in_request_line(void **state)
{
    (void)state;
    assert_int_equal(parse_err("GET  / HTTP/1.1\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
    assert_int_equal(parse_err("GET / HTTP/1.1 \r\n\r\n"), HTTPREQ_ERR_SYNTAX);
    assert_int_equal(parse_err("GET /a b HTTP/1.1\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
    assert_int_equal(parse_err(" GET / HTTP/1.1\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
}

static void obs_fold_rejected(void **state)
{
    (void)state;
    assert_int_equal(parse_err("GET / HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
    assert_int_equal(parse_err("GET / HTTP/1.1\r\n\tc\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
}

static void header_without_colon(void **state)
{
    (void)state;
    assert_int_equal(parse_err("GET / HTTP/1.1\r\nHost t\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
    assert_int_equal(parse_err("GET / HTTP/1.1\r\n: t\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
}

static void space_before_colon(void **state)
{
    (void)state;
    assert_int_equal(parse_err("GET / HTTP/1.1\r\nHost : t\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
}

static void nul_in_header_value(void **state)
{
    (void)state;
    const char req[] = "GET / HTTP/1.1\r\nUser-Agent: a\0b\r\n\r\n";
    httpreq_t r;
    assert_int_equal(parse_n(req, sizeof(req) - 1, MAX_HEAD, &r), HTTPREQ_ERR_SYNTAX);
}

static void bare_cr_in_header(void **state)
{
    (void)state;
    assert_int_equal(parse_err("GET / HTTP/1.1\r\nUser-Agent: a\rb\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
    assert_int_equal(parse_err("GET / HTTP/1.1\r\n\rX: y\r\n\r\n"), HTTPREQ_ERR_SYNTAX);
}

static void obs_text_in_header_value_accepted(void **state)
{
    (void)state;
    assert_int_equal(parse_err("GET / HTTP/1.1\r\nUser-Agent: caf\xc3\xa9\t1\r\n\r\n"), HTTPREQ_OK);
}

static void status_codes(void **state)
{
    (void)state;
    assert_int_equal(httpreq_status(HTTPREQ_OK), 0);
    assert_int_equal(httpreq_status(HTTPREQ_INCOMPLETE), 0);
    assert_int_equal(httpreq_status(HTTPREQ_ERR_TOO_LARGE), 431);
    assert_int_equal(httpreq_status(HTTPREQ_ERR_SYNTAX), 400);
    assert_int_equal(httpreq_status(HTTPREQ_ERR_METHOD), 405);
    assert_int_equal(httpreq_status(HTTPREQ_ERR_VERSION), 505);
    assert_int_equal(httpreq_status(HTTPREQ_ERR_BODY), 400);
}

static void strerror_texts_distinct(void **state)
{
    (void)state;
    for (int i = HTTPREQ_OK; i <= HTTPREQ_ERR_BODY; i++) {
        const char *a = httpreq_strerror((httpreq_err_t)i);
        assert_non_null(a);
        assert_string_not_equal(a, "unknown error");
        for (int j = HTTPREQ_OK; j < i; j++)
            assert_string_not_equal(a, httpreq_strerror((httpreq_err_t)j));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_with_query),
        cmocka_unit_test(get_without_query),
        cmocka_unit_test(empty_query_is_present_but_empty),
        cmocka_unit_test(query_split_at_first_question_mark),
        cmocka_unit_test(bare_lf_line_ends),
        cmocka_unit_test(mixed_line_ends),
        cmocka_unit_test(leading_empty_lines_skipped),
        cmocka_unit_test(raw_high_bytes_in_target_accepted),
        cmocka_unit_test(pipelined_requests),
        cmocka_unit_test(pipelined_second_incomplete),
        cmocka_unit_test(head_exactly_max_head_accepted),
        cmocka_unit_test(http11_default_keep_alive),
        cmocka_unit_test(http11_connection_close),
        cmocka_unit_test(connection_token_list_case_insensitive),
        cmocka_unit_test(connection_close_in_second_header),
        cmocka_unit_test(connection_closed_is_not_close),
        cmocka_unit_test(http10_default_close),
        cmocka_unit_test(http10_keep_alive_requested),
        cmocka_unit_test(http10_keep_alive_and_close),
        cmocka_unit_test(x_forwarded_for_captured),
        cmocka_unit_test(x_forwarded_for_first_one_kept),
        cmocka_unit_test(x_real_ip_fallback),
        cmocka_unit_test(x_forwarded_for_beats_x_real_ip),
        cmocka_unit_test(empty_buffer_incomplete),
        cmocka_unit_test(partial_request_line_incomplete),
        cmocka_unit_test(partial_method_incomplete),
        cmocka_unit_test(head_without_blank_line_incomplete),
        cmocka_unit_test(every_prefix_is_incomplete),
        cmocka_unit_test(no_terminator_at_max_head_too_large),
        cmocka_unit_test(terminator_past_max_head_too_large),
        cmocka_unit_test(long_request_line_too_large),
        cmocka_unit_test(post_rejected),
        cmocka_unit_test(head_method_rejected),
        cmocka_unit_test(lowercase_get_rejected),
        cmocka_unit_test(method_rejected_once_request_line_complete),
        cmocka_unit_test(http2_version_rejected),
        cmocka_unit_test(malformed_version_syntax),
        cmocka_unit_test(content_length_zero_accepted),
        cmocka_unit_test(content_length_body_rejected),
        cmocka_unit_test(content_length_invalid_syntax),
        cmocka_unit_test(transfer_encoding_rejected),
        cmocka_unit_test(target_must_start_with_slash),
        cmocka_unit_test(nul_in_request_line),
        cmocka_unit_test(control_chars_in_request_line),
        cmocka_unit_test(control_byte_at_every_offset_rejected),
        cmocka_unit_test(high_bytes_at_every_offset_accepted),
        cmocka_unit_test(extra_spaces_in_request_line),
        cmocka_unit_test(obs_fold_rejected),
        cmocka_unit_test(header_without_colon),
        cmocka_unit_test(space_before_colon),
        cmocka_unit_test(nul_in_header_value),
        cmocka_unit_test(bare_cr_in_header),
        cmocka_unit_test(obs_text_in_header_value_accepted),
        cmocka_unit_test(status_codes),
        cmocka_unit_test(strerror_texts_distinct),
    };
    return cmocka_run_group_tests_name("httpreq", tests, NULL, free_last);
}
