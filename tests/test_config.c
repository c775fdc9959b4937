/* Check suite for src/core/config.c: the settings table, environment
 * overrides and numeric parsing with its error messages. */
#include "config_table.h"
#include "npi.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(table_matches_the_list)
{
    static const char *const names[] = {
#define NAME_(name, def, desc) #name,
        NPI_CONFIG_LIST(NAME_)
#undef NAME_
    };
    const npi_config_entry *t = npi_config_table();
    size_t n = 0;
    for (; t[n].name != NULL; n++) {
        ck_assert_str_eq(t[n].name, names[n]);
        ck_assert_ptr_nonnull(t[n].default_val);
        ck_assert_ptr_nonnull(t[n].description);
        ck_assert_uint_gt(strlen(t[n].description), 0);
        ck_assert_int_eq(strncmp(t[n].name, "NUMPUSH_", 8), 0);
        /* Each name appears once. */
        for (size_t j = 0; j < n; j++)
            ck_assert_str_ne(t[j].name, t[n].name);
    }
    ck_assert_uint_eq(n, sizeof names / sizeof names[0]);
}
END_TEST

START_TEST(defaults_when_unset)
{
    const npi_config_entry *t = npi_config_table();
    for (size_t i = 0; t[i].name != NULL; i++)
        unsetenv(t[i].name);
    for (size_t i = 0; t[i].name != NULL; i++) {
        npi_config_source src = NPI_CONFIG_ENV;
        ck_assert_str_eq(npi_config_get(t[i].name, &src), t[i].default_val);
        ck_assert_int_eq(src, NPI_CONFIG_DEFAULT);
    }
    ck_assert_str_eq(npi_config_get("NUMPUSH_TIMEOUT", NULL), "5");
    long l = 0;
    ck_assert_int_eq(npi_config_long("NUMPUSH_TIMEOUT", &l), NP_OK);
    ck_assert_int_eq(l, 5);
    double d = 0;
    ck_assert_int_eq(npi_config_double("NUMPUSH_TIMEOUT", &d), NP_OK);
    ck_assert_double_eq(d, 5.0);
}
END_TEST

START_TEST(environment_overrides)
{
    setenv("NUMPUSH_SPIN", "123", 1);
    npi_config_source src = NPI_CONFIG_DEFAULT;
    ck_assert_str_eq(npi_config_get("NUMPUSH_SPIN", &src), "123");
    ck_assert_int_eq(src, NPI_CONFIG_ENV);
    long l = 0;
    ck_assert_int_eq(npi_config_long("NUMPUSH_SPIN", &l), NP_OK);
    ck_assert_int_eq(l, 123);

    /* An empty value means "unset", so the default comes back. */
    setenv("NUMPUSH_SPIN", "", 1);
    ck_assert_str_eq(npi_config_get("NUMPUSH_SPIN", &src), "auto");
    ck_assert_int_eq(src, NPI_CONFIG_DEFAULT);

    setenv("NUMPUSH_TIMEOUT", "2.5", 1);
    double d = 0;
    ck_assert_int_eq(npi_config_double("NUMPUSH_TIMEOUT", &d), NP_OK);
    ck_assert_double_eq(d, 2.5);
    setenv("NUMPUSH_TIMEOUT", " 1e3\n", 1); /* blanks around a number are fine */
    ck_assert_int_eq(npi_config_double("NUMPUSH_TIMEOUT", &d), NP_OK);
    ck_assert_double_eq(d, 1000.0);
    setenv("NUMPUSH_SPIN", "-7 ", 1);
    ck_assert_int_eq(npi_config_long("NUMPUSH_SPIN", &l), NP_OK);
    ck_assert_int_eq(l, -7);
    unsetenv("NUMPUSH_SPIN");
    unsetenv("NUMPUSH_TIMEOUT");
}
END_TEST

START_TEST(malformed_numbers)
{
    static const struct {
        const char *val;
        int as_long; /* 1: parse as long, 0: as double */
        const char *says;
    } cases[] = {
        {"abc", 1, "is not a whole number"},
        {"12abc", 1, "is not a whole number"},
        {"1.5", 1, "is not a whole number"},
        {"0x10", 1, "is not a whole number"},
        {"99999999999999999999999", 1, "is out of range"},
        {"-99999999999999999999999", 1, "is out of range"},
        {"ten", 0, "is not a number"},
        {"1.5s", 0, "is not a number"},
        {"1e999", 0, "is not a finite number in range"},
        {"nan", 0, "is not a finite number in range"},
        {"inf", 0, "is not a finite number in range"},
        {" ", 0, "is not a number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv("NUMPUSH_TIMEOUT", cases[i].val, 1);
        npi_error_clear();
        long l = 42;
        double d = 42;
        np_err err = cases[i].as_long ? npi_config_long("NUMPUSH_TIMEOUT", &l)
                                      : npi_config_double("NUMPUSH_TIMEOUT", &d);
        ck_assert_msg(err == NP_ERR_CONFIG, "'%s' gave %s", cases[i].val, np_errname(err));
        ck_assert_int_eq(l, 42); /* outputs untouched on error */
        ck_assert_double_eq(d, 42);
        char want[128];
        snprintf(want, sizeof want, "NUMPUSH_TIMEOUT='%s' (from the environment) %s", cases[i].val,
                 cases[i].says);
        ck_assert_str_eq(np_last_error(), want);
    }
    unsetenv("NUMPUSH_TIMEOUT");
}
END_TEST

START_TEST(unknown_and_non_numeric_settings)
{
    ck_assert_ptr_null(npi_config_get("NUMPUSH_NO_SUCH_THING", NULL));
    ck_assert_ptr_null(npi_config_get("numpush_timeout", NULL)); /* names are case-sensitive */
    ck_assert_ptr_null(npi_config_get(NULL, NULL));
    long l;
    double d;
    ck_assert_int_eq(npi_config_long("NUMPUSH_NO_SUCH_THING", &l), NP_ERR_INTERNAL);
    ck_assert_ptr_nonnull(strstr(np_last_error(), "NUMPUSH_NO_SUCH_THING"));
    ck_assert_int_eq(npi_config_double("NUMPUSH_NO_SUCH_THING", &d), NP_ERR_INTERNAL);
    /* A setting whose default is empty has no number to give. */
    unsetenv("NUMPUSH_FABRIC");
    ck_assert_int_eq(npi_config_long("NUMPUSH_FABRIC", &l), NP_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(np_last_error(), "NUMPUSH_FABRIC"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, table_matches_the_list);
    tcase_add_test(tc, defaults_when_unset);
    tcase_add_test(tc, environment_overrides);
    tcase_add_test(tc, malformed_numbers);
    tcase_add_test(tc, unknown_and_non_numeric_settings);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
