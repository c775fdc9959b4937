/* Check suite for src/core/error.c: the generated tables and detail messages. */
#include "npi.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(every_code_has_name_and_text)
{
    static const struct {
        np_err code;
        const char *name;
    } codes[] = {
#define CODE_(name, value, text) {NP_##name, #name},
        NP_ERROR_LIST(CODE_)
#undef CODE_
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        ck_assert_str_eq(np_errname(codes[i].code), codes[i].name);
        ck_assert_ptr_nonnull(np_strerror(codes[i].code));
        ck_assert_str_ne(np_strerror(codes[i].code), "unknown error code");
    }
    ck_assert_int_eq(NP_OK, 0);
    ck_assert_str_eq(np_errname(NP_ERR_MISMATCH), "ERR_MISMATCH");
    ck_assert_str_eq(np_strerror(NP_ERR_NULL), "NULL buffer with a non-zero count");
}
END_TEST

START_TEST(unknown_codes_are_named_unknown)
{
    ck_assert_str_eq(np_errname((np_err)9999), "UNKNOWN");
    ck_assert_str_eq(np_errname((np_err)-3), "UNKNOWN");
    ck_assert_str_eq(np_strerror((np_err)9999), "unknown error code");
}
END_TEST

START_TEST(detail_carries_rank_and_text)
{
    npi_error_clear();
    ck_assert_str_eq(np_last_error(), "");
    npi_error_set_rank(-1);
    ck_assert_int_eq(npi_error(NP_ERR_ROOT, "np_bcast: root %d out of range", 9), NP_ERR_ROOT);
    ck_assert_str_eq(np_last_error(), "np_bcast: root 9 out of range");
    npi_error_set_rank(3);
    npi_error(NP_ERR_ARG, "x=%s", "y");
    ck_assert_str_eq(np_last_error(), "rank 3: x=y");
    npi_error_set_rank(-1);
}
END_TEST

START_TEST(detail_is_truncated_not_overrun)
{
    char big[5000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    npi_error(NP_ERR_ARG, "%s", big);
    ck_assert_uint_lt(strlen(np_last_error()), sizeof big);
    ck_assert_uint_gt(strlen(np_last_error()), 100);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("error");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, every_code_has_name_and_text);
    tcase_add_test(tc, unknown_codes_are_named_unknown);
    tcase_add_test(tc, detail_carries_rank_and_text);
    tcase_add_test(tc, detail_is_truncated_not_overrun);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
