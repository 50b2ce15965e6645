/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * QTest for the libtpms TPM backend (-tpmdev libtpms): the TPM state
 * is kept in an nvstore image, survives restarts, is rolled back by
 * loadvm and migrates.
 */

#include "qemu/osdep.h"
#include <glib/gstdio.h>

#include "qemu/bswap.h"
#include "hw/acpi/tpm.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qstring.h"
#include "tpm-util.h"
#include "tpm-tis-util.h"

uint64_t tpm_tis_base_addr = TPM_TIS_ADDR_BASE;

/* TPM 2.0 response codes */
#define TPM2_RC_SUCCESS         0x000
#define TPM2_RC_INITIALIZE      0x100
#define TPM2_RC_NV_DEFINED      0x14c
#define TPM2_RC_HANDLE_1        0x18b    /* TPM_RC_HANDLE + TPM_RC_1 */
#define TPM2_RC_NV_UNDEFINED    0x28b    /* TPM_RC_HANDLE + TPM_RC_2 */

#define NV_DATA_SIZE 8

static bool have_libtpms;
static char *tmpdir;
/* How commands reach the TPM */
static tx_func *tpm_tx = tpm_tis_transfer;

static const unsigned char tpm2_startup[] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x44, 0x00, 0x00,
};

static const unsigned char tpm2_shutdown[] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x45, 0x00, 0x00,
};

static const unsigned char tpm2_success[] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00,
};

/*
 * NV index 0x01000000, 8 bytes, nameAlg SHA256, attributes
 * OWNERWRITE|AUTHWRITE|OWNERREAD|AUTHREAD|NO_DA
 */
static const unsigned char tpm2_nv_define[] = {
    0x80, 0x02, 0x00, 0x00, 0x00, 0x2d, 0x00, 0x00, 0x01, 0x2a,
    0x40, 0x00, 0x00, 0x01,                         /* TPM_RH_OWNER */
    0x00, 0x00, 0x00, 0x09,                         /* authorization */
    0x40, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00,                                     /* auth */
    0x00, 0x0e,                                     /* publicInfo */
    0x01, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x02, 0x06, 0x00, 0x06,
    0x00, 0x00, 0x00, 0x08,
};

/* Response to NV_DefineSpace and NV_Write */
static const unsigned char tpm2_nv_success[] = {
    0x80, 0x02, 0x00, 0x00, 0x00, 0x13, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
};

static const unsigned char tpm2_nv_read[] = {
    0x80, 0x02, 0x00, 0x00, 0x00, 0x23, 0x00, 0x00, 0x01, 0x4e,
    0x40, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x09,
    0x40, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x08,                                     /* size */
    0x00, 0x00,                                     /* offset */
};

static void tpm_cmd(QTestState *s, const unsigned char *req, size_t req_size,
                    unsigned char *rsp)
{
    /* tpm_tis_transfer() reads as much as the TPM returns */
    tpm_tx(s, req, req_size, rsp, 4096);
    g_assert_cmpuint(ldl_be_p(rsp + 2), >=, 10);
    g_assert_cmpuint(ldl_be_p(rsp + 2), <=, 4096);
}

static uint32_t tpm_rc(const unsigned char *rsp)
{
    return ldl_be_p(rsp + 6);
}

static void tpm_shutdown(QTestState *s)
{
    unsigned char rsp[4096];

    tpm_cmd(s, tpm2_shutdown, sizeof(tpm2_shutdown), rsp);
    g_assert_cmpmem(rsp, sizeof(tpm2_success),
                    tpm2_success, sizeof(tpm2_success));
}

static uint32_t tpm_nv_define(QTestState *s)
{
    unsigned char rsp[4096];

    tpm_cmd(s, tpm2_nv_define, sizeof(tpm2_nv_define), rsp);
    if (tpm_rc(rsp) == TPM2_RC_SUCCESS) {
        g_assert_cmpmem(rsp, sizeof(tpm2_nv_success),
                        tpm2_nv_success, sizeof(tpm2_nv_success));
    }
    return tpm_rc(rsp);
}

static void tpm_nv_write(QTestState *s, const char *data)
{
    static const unsigned char head[] = {
        0x80, 0x02, 0x00, 0x00, 0x00, 0x2b, 0x00, 0x00, 0x01, 0x37,
        0x40, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x09,
        0x40, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x08,                                 /* size */
    };
    unsigned char req[sizeof(head) + NV_DATA_SIZE + 2];
    unsigned char rsp[4096];

    g_assert_cmpuint(strlen(data), ==, NV_DATA_SIZE);
    memcpy(req, head, sizeof(head));
    memcpy(req + sizeof(head), data, NV_DATA_SIZE);
    stw_be_p(req + sizeof(head) + NV_DATA_SIZE, 0);   /* offset */
    g_assert_cmpuint(sizeof(req), ==, 0x2b);

    tpm_cmd(s, req, sizeof(req), rsp);
    g_assert_cmpmem(rsp, sizeof(tpm2_nv_success),
                    tpm2_nv_success, sizeof(tpm2_nv_success));
}

/* Read the NV index: its contents, or NULL and the error in *rc */
static void tpm_nv_read_rc(QTestState *s, uint32_t *rc, char *data)
{
    unsigned char rsp[4096];

    tpm_cmd(s, tpm2_nv_read, sizeof(tpm2_nv_read), rsp);
    *rc = tpm_rc(rsp);
    if (*rc != TPM2_RC_SUCCESS) {
        return;
    }
    /* header, parameterSize, TPM2B size, data, session */
    g_assert_cmpuint(ldl_be_p(rsp + 2), ==, 10 + 4 + 2 + NV_DATA_SIZE + 5);
    g_assert_cmpuint(lduw_be_p(rsp + 14), ==, NV_DATA_SIZE);
    memcpy(data, rsp + 16, NV_DATA_SIZE);
    data[NV_DATA_SIZE] = 0;
}

static void tpm_nv_read_expect(QTestState *s, const char *expected)
{
    char data[NV_DATA_SIZE + 1];
    uint32_t rc;

    tpm_nv_read_rc(s, &rc, data);
    g_assert_cmphex(rc, ==, TPM2_RC_SUCCESS);
    g_assert_cmpstr(data, ==, expected);
}

static char *qemu_img_create(const char *name, const char *args,
                             const char *size)
{
    const char *qemu_img = g_getenv("QTEST_QEMU_IMG");
    g_autofree char *cli = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err_out = NULL;
    char *path = g_build_filename(tmpdir, name, NULL);
    GError *err = NULL;
    int status;

    g_assert(qemu_img);
    cli = g_strdup_printf("%s create %s %s %s", qemu_img, args, path, size);
    g_spawn_command_line_sync(cli, &out, &err_out, &status, &err);
    g_assert_no_error(err);
    if (!g_spawn_check_exit_status(status, &err)) {
        g_printerr("%s: %s\n", cli, err_out);
    }
    g_assert_no_error(err);
    return path;
}

/* An nvstore image in a qcow2 container */
static char *create_image(const char *name)
{
    return qemu_img_create(name, "-f nvstore -o container=qcow2", "");
}

static QTestState *start_vm(const char *img, const char *extra)
{
    return qtest_initf("-machine pc -nodefaults "
                       "-blockdev file,node-name=f0,filename=%s "
                       "-blockdev qcow2,node-name=q0,file=f0 "
                       "-blockdev nvstore,node-name=nv0,file=q0 "
                       "-tpmdev libtpms,id=tpm0,drive=nv0 "
                       "-device %s,tpmdev=tpm0 %s",
                       img, tpm_tx == tpm_tis_transfer ? "tpm-tis" : "tpm-crb",
                       extra ? extra : "");
}

static bool skip_test(void)
{
    if (!have_libtpms) {
        g_test_skip("QEMU has no libtpms TPM backend");
        return true;
    }
    if (!g_getenv("QTEST_QEMU_IMG")) {
        g_test_skip("QTEST_QEMU_IMG is not set");
        return true;
    }
    return false;
}

static void hmp_expect_ok(QTestState *s, const char *cmd)
{
    g_autofree char *out = qtest_hmp(s, "%s", cmd);

    g_assert_cmpstr(out, ==, "");
}

/* The state persists across restarts */
static void test_persist(void)
{
    g_autofree char *img = NULL;
    QTestState *s;
    char data[NV_DATA_SIZE + 1];
    uint32_t rc;

    if (skip_test()) {
        return;
    }
    img = create_image("persist.qcow2");

    s = start_vm(img, NULL);
    tpm_util_startup(s, tpm_tx);
    /* A fresh TPM has no NV index */
    tpm_nv_read_rc(s, &rc, data);
    g_assert_cmphex(rc, ==, TPM2_RC_NV_UNDEFINED);
    g_assert_cmphex(tpm_nv_define(s), ==, TPM2_RC_SUCCESS);
    tpm_nv_write(s, "nvstore!");
    g_assert_cmphex(tpm_nv_define(s), ==, TPM2_RC_NV_DEFINED);
    tpm_shutdown(s);
    qtest_quit(s);

    s = start_vm(img, NULL);
    tpm_util_startup(s, tpm_tx);
    tpm_nv_read_expect(s, "nvstore!");
    g_assert_cmphex(tpm_nv_define(s), ==, TPM2_RC_NV_DEFINED);
    /* A change without an orderly shutdown is durable as well */
    tpm_nv_write(s, "changed!");
    qtest_quit(s);

    s = start_vm(img, NULL);
    tpm_util_startup(s, tpm_tx);
    tpm_nv_read_expect(s, "changed!");
    qtest_quit(s);

    g_unlink(img);
}

/* The same through the CRB interface, with a -drive */
static void test_crb(void)
{
    g_autofree char *img = NULL;
    g_autofree char *args = NULL;
    QTestState *s;

    if (skip_test()) {
        return;
    }
    if (!qtest_has_device("tpm-crb")) {
        g_test_skip("QEMU has no tpm-crb device");
        return;
    }
    img = create_image("crb.qcow2");
    args = g_strdup_printf("-machine pc -nodefaults "
                           "-drive if=none,id=nv0,driver=nvstore,"
                           "file.driver=qcow2,file.file.filename=%s "
                           "-tpmdev libtpms,id=tpm0,drive=nv0 "
                           "-device tpm-crb,tpmdev=tpm0", img);
    tpm_tx = tpm_util_crb_transfer;

    s = qtest_init(args);
    tpm_util_startup(s, tpm_tx);
    g_assert_cmphex(tpm_nv_define(s), ==, TPM2_RC_SUCCESS);
    tpm_nv_write(s, "crb-crb!");
    qtest_quit(s);

    s = qtest_init(args);
    tpm_util_startup(s, tpm_tx);
    tpm_nv_read_expect(s, "crb-crb!");
    qtest_quit(s);

    tpm_tx = tpm_tis_transfer;
    g_unlink(img);
}

/*
 * A failed commit fails the command, and every command until the next
 * reset, which goes back to the stored state
 */
static void test_persist_failure(void)
{
    static const unsigned char tpm2_failure[] = {
        0x80, 0x01, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x01, 0x01,
    };
    g_autofree char *img = NULL;
    g_autofree char *args = NULL;
    unsigned char rsp[4096];
    QDict *ret;
    QTestState *s;

    if (skip_test()) {
        return;
    }
    img = create_image("failure.qcow2");

    /*
     * The first commit (manufacturing the TPM at the first reset) passes,
     * the second one (TPM2_Startup) fails in its flush.
     */
    args = g_strdup_printf("-machine pc -nodefaults "
                           "-blockdev file,node-name=f0,filename=%s "
                           "-blockdev blkdebug,node-name=bd0,image=f0,"
                           "set-state.0.event=flush_to_disk,"
                           "set-state.0.state=1,set-state.0.new_state=2,"
                           "inject-error.0.event=flush_to_disk,"
                           "inject-error.0.state=2,"
                           "inject-error.0.iotype=flush,"
                           "inject-error.0.once=on "
                           "-blockdev qcow2,node-name=q0,file=bd0 "
                           "-blockdev nvstore,node-name=nv0,file=q0 "
                           "-tpmdev libtpms,id=tpm0,drive=nv0 "
                           "-device tpm-tis,tpmdev=tpm0", img);
    s = qtest_init(args);
    tpm_cmd(s, tpm2_startup, sizeof(tpm2_startup), rsp);
    g_assert_cmpmem(rsp, 10, tpm2_failure, sizeof(tpm2_failure));
    tpm_cmd(s, tpm2_nv_read, sizeof(tpm2_nv_read), rsp);
    g_assert_cmpmem(rsp, 10, tpm2_failure, sizeof(tpm2_failure));

    /* The reset stores a new TPM */
    ret = qtest_qmp(s, "{ 'execute': 'system_reset' }");
    g_assert(qdict_haskey(ret, "return"));
    qobject_unref(ret);
    qtest_qmp_eventwait(s, "RESET");
    tpm_util_startup(s, tpm_tx);
    g_assert_cmphex(tpm_nv_define(s), ==, TPM2_RC_SUCCESS);
    tpm_nv_write(s, "recover!");
    qtest_quit(s);

    s = start_vm(img, NULL);
    tpm_util_startup(s, tpm_tx);
    tpm_nv_read_expect(s, "recover!");
    qtest_quit(s);

    g_unlink(img);
}

/* loadvm rolls the TPM back with the image */
static void test_savevm_loadvm(void)
{
    g_autofree char *img = NULL;
    g_autofree char *disk = NULL;
    g_autofree char *disk_args = NULL;
    QTestState *s;

    if (skip_test()) {
        return;
    }
    img = create_image("savevm.qcow2");
    /* savevm does not put the VM state into an nvstore node: a disk */
    disk = qemu_img_create("savevm-disk.qcow2", "-f qcow2", "16M");
    disk_args = g_strdup_printf("-blockdev file,node-name=df,filename=%s "
                                "-blockdev qcow2,node-name=disk0,file=df",
                                disk);

    s = start_vm(img, disk_args);
    tpm_util_startup(s, tpm_tx);
    g_assert_cmphex(tpm_nv_define(s), ==, TPM2_RC_SUCCESS);
    tpm_nv_write(s, "AAAAAAAA");
    hmp_expect_ok(s, "savevm s1");
    tpm_nv_write(s, "BBBBBBBB");
    tpm_nv_read_expect(s, "BBBBBBBB");
    hmp_expect_ok(s, "loadvm s1");
    /* Resumed, not restarted: no TPM2_Startup */
    tpm_nv_read_expect(s, "AAAAAAAA");
    qtest_quit(s);

    /* The image agrees with the state loadvm restored */
    s = start_vm(img, NULL);
    tpm_util_startup(s, tpm_tx);
    tpm_nv_read_expect(s, "AAAAAAAA");
    qtest_quit(s);

    g_unlink(img);
    g_unlink(disk);
}

/* Wait up to a minute for the VM to run */
static void wait_for_running(QTestState *s)
{
    gint64 deadline = g_get_monotonic_time() + 60 * G_TIME_SPAN_SECOND;

    for (;;) {
        QDict *rsp = qtest_qmp(s, "{ 'execute': 'query-status' }");
        bool running = qdict_get_bool(qdict_get_qdict(rsp, "return"),
                                      "running");

        qobject_unref(rsp);
        if (running) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
}

static void do_test_migration(bool shared)
{
    g_autofree char *src_img = NULL;
    g_autofree char *dst_img = NULL;
    g_autofree char *sock = g_build_filename(tmpdir, "migsocket", NULL);
    g_autofree char *uri = g_strdup_printf("unix:%s", sock);
    g_autofree char *incoming = g_strdup_printf("-incoming %s", uri);
    QTestState *src, *dst;

    if (skip_test()) {
        return;
    }
    src_img = create_image("mig-src.qcow2");
    dst_img = shared ? g_strdup(src_img) : create_image("mig-dst.qcow2");

    src = start_vm(src_img, NULL);
    dst = start_vm(dst_img, incoming);

    tpm_util_startup(src, tpm_tx);
    g_assert_cmphex(tpm_nv_define(src), ==, TPM2_RC_SUCCESS);
    tpm_nv_write(src, "MIGRATE1");

    tpm_util_migrate(src, uri);
    /*
     * The destination runs once the migration is complete (failed, it
     * exits): tpm_util_wait_for_migration_complete(), which has no
     * deadline, then only checks the status
     */
    wait_for_running(dst);
    tpm_util_wait_for_migration_complete(dst);

    /* Resumed, not restarted: no TPM2_Startup */
    tpm_nv_read_expect(dst, "MIGRATE1");
    tpm_nv_write(dst, "MIGRATE2");

    qtest_quit(dst);
    qtest_quit(src);

    /* The destination stored the migrated state in its image */
    dst = start_vm(dst_img, NULL);
    tpm_util_startup(dst, tpm_tx);
    tpm_nv_read_expect(dst, "MIGRATE2");
    qtest_quit(dst);

    g_unlink(sock);
    g_unlink(src_img);
    if (!shared) {
        g_unlink(dst_img);
    }
}

static void test_migration_shared(void)
{
    do_test_migration(true);
}

static void test_migration_copy(void)
{
    do_test_migration(false);
}

/*
 * A second TPM is refused, with an error message.  system/tpm.c allows
 * one TPM backend per process and refuses a second before creating it;
 * the libtpms backend, whose state is global in libtpms, relies on that
 * (it asserts it has one instance).
 */
static void test_second_instance(void)
{
    g_autofree char *img = NULL;
    g_autofree char *img2 = NULL;
    g_autofree char *err_out = NULL;
    GError *err = NULL;
    int status;
    const char *argv[] = {
        g_getenv("QTEST_QEMU_BINARY"), "-machine", "none", "-nodefaults",
        "-display", "none", "-blockdev", NULL,
        "-blockdev", NULL, "-tpmdev", "libtpms,id=tpm0,drive=nv0",
        "-tpmdev", "libtpms,id=tpm1,drive=nv1", NULL,
    };
    g_autofree char *bdev0 = NULL;
    g_autofree char *bdev1 = NULL;

    if (skip_test()) {
        return;
    }
    img = create_image("one.qcow2");
    img2 = create_image("two.qcow2");
    bdev0 = g_strdup_printf("{'driver':'nvstore','node-name':'nv0','file':"
                            "{'driver':'qcow2','file':{'driver':'file',"
                            "'filename':'%s'}}}", img);
    bdev1 = g_strdup_printf("{'driver':'nvstore','node-name':'nv1','file':"
                            "{'driver':'qcow2','file':{'driver':'file',"
                            "'filename':'%s'}}}", img2);
    /* JSON for -blockdev needs double quotes */
    g_strdelimit(bdev0, "'", '"');
    g_strdelimit(bdev1, "'", '"');
    argv[7] = bdev0;
    argv[9] = bdev1;

    g_assert(argv[0]);
    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL,
                 NULL, NULL, NULL, &err_out, &status, &err);
    g_assert_no_error(err);
    g_assert_false(g_spawn_check_exit_status(status, NULL));
    g_assert_nonnull(strstr(err_out, "Only one TPM is allowed."));

    g_unlink(img);
    g_unlink(img2);
}

static bool query_has_libtpms(void)
{
    QTestState *s = qtest_init("-machine none");
    QDict *rsp = qtest_qmp(s, "{ 'execute': 'query-tpm-types' }");
    bool found = false;

    if (qdict_haskey(rsp, "return")) {
        QList *types = qdict_get_qlist(rsp, "return");
        QListEntry *e;

        QLIST_FOREACH_ENTRY(types, e) {
            QString *t = qobject_to(QString, qlist_entry_obj(e));

            if (t && !strcmp(qstring_get_str(t), "libtpms")) {
                found = true;
            }
        }
    }
    qobject_unref(rsp);
    qtest_quit(s);
    return found;
}

int main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    int ret;

    g_test_init(&argc, &argv, NULL);

    if (!qtest_has_machine("pc")) {
        return g_test_run();
    }
    have_libtpms = query_has_libtpms();
    tmpdir = g_dir_make_tmp("tpm-libtpms-test.XXXXXX", &err);
    g_assert_no_error(err);

    qtest_add_func("/tpm/libtpms/persist", test_persist);
    qtest_add_func("/tpm/libtpms/crb", test_crb);
    qtest_add_func("/tpm/libtpms/persist-failure", test_persist_failure);
    qtest_add_func("/tpm/libtpms/savevm-loadvm", test_savevm_loadvm);
    qtest_add_func("/tpm/libtpms/migration/shared", test_migration_shared);
    qtest_add_func("/tpm/libtpms/migration/copy", test_migration_copy);
    qtest_add_func("/tpm/libtpms/second-instance", test_second_instance);

    ret = g_test_run();

    g_rmdir(tmpdir);
    g_free(tmpdir);
    return ret;
}
