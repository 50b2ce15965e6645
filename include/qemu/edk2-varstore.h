/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * edk2's non-volatile UEFI variable store, as OVMF keeps it in its
 * variable flash (OVMF_VARS.fd): a firmware volume holding an
 * authenticated variable store, then the fault-tolerant-write working
 * block and spare area.  Parsed strictly from untrusted bytes into a
 * list of variables, and written back compacted.  No I/O.
 *
 * The layout is edk2's (MdePkg/Include/Pi/PiFirmwareVolume.h,
 * MdeModulePkg/Include/Guid/VariableFormat.h and
 * MdeModulePkg/Include/Guid/SystemNvDataGuid.h).
 */

#ifndef QEMU_EDK2_VARSTORE_H
#define QEMU_EDK2_VARSTORE_H

#include "qemu/uuid.h"
#include "qapi/qapi-types-uefi.h"

/* Variable attributes (UEFI 2.10, 8.2) */
#define EDK2_VAR_NON_VOLATILE                       0x01
#define EDK2_VAR_BOOTSERVICE_ACCESS                 0x02
#define EDK2_VAR_RUNTIME_ACCESS                     0x04
#define EDK2_VAR_HARDWARE_ERROR_RECORD              0x08
#define EDK2_VAR_AUTHENTICATED_WRITE_ACCESS         0x10
#define EDK2_VAR_TIME_BASED_AUTHENTICATED_WRITE_ACCESS 0x20
#define EDK2_VAR_APPEND_WRITE                       0x40
#define EDK2_VAR_ATTR_MASK                          0x7f

/* The size of an EFI_TIME */
#define EDK2_TIME_LEN 16

/* The size of OVMF_VARS_4M.fd, which edk2_varstore_new() lays out */
#define EDK2_VARSTORE_4M_SIZE 0x84000

/* "8be4df61-93ca-11d2-aa0d-00e098032b8c", of Boot####, PK, KEK... */
#define EDK2_GLOBAL_VARIABLE_GUID "8be4df61-93ca-11d2-aa0d-00e098032b8c"
/* "d719b2cb-3d3a-4596-a3bc-dad00e67656f", of db and dbx */
#define EDK2_IMAGE_SECURITY_DATABASE_GUID \
    "d719b2cb-3d3a-4596-a3bc-dad00e67656f"

typedef struct Edk2Var {
    QemuUUID guid;              /* vendor GUID, in RFC 4122 byte order */
    char *name;                 /* UTF-8 */
    uint32_t attr;
    uint64_t count;             /* MonotonicCount */
    uint8_t time[EDK2_TIME_LEN]; /* TimeStamp (EFI_TIME), as stored */
    uint32_t pkidx;             /* PubKeyIndex */
    uint8_t *data;
    size_t len;
} Edk2Var;

typedef struct Edk2VarStore {
    /*
     * The store as read (or laid out): everything but the variables
     * is written back as it is, except the working block of the
     * fault-tolerant writes, which is written back empty
     */
    GByteArray *image;
    /* The variables' area, [start, end) of @image */
    size_t start;
    size_t end;
    /* The working block, [ftw, ftw + ftw_size) of @image; 0 if none */
    size_t ftw;
    size_t ftw_size;
    /* The live variables (Edk2Var), in the order of the store */
    GPtrArray *vars;
} Edk2VarStore;

/**
 * edk2_varstore_parse:
 * @buf: the contents of a variable flash
 *
 * Parse the variable store that begins @buf: every header checked
 * (checksums, sizes, GUIDs, states), every variable's header, name and
 * size.  Deleted variables and those whose deletion began are dropped,
 * as edk2 drops them (a variable in deletion transition is live only if
 * no added copy follows).
 *
 * Returns: the store, or NULL with @errp set if @buf is not one.
 */
Edk2VarStore *edk2_varstore_parse(const uint8_t *buf, size_t len,
                                  Error **errp);

/**
 * edk2_varstore_new:
 *
 * Returns: an empty store laid out as OVMF's 4 MiB flash
 * (OVMF_VARS_4M.fd, EDK2_VARSTORE_4M_SIZE octets).
 */
Edk2VarStore *edk2_varstore_new(void);

void edk2_varstore_free(Edk2VarStore *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Edk2VarStore, edk2_varstore_free)

/**
 * edk2_varstore_serialize:
 *
 * Returns: the store as a variable flash of the size it was read with,
 * its variables compacted in the order of @s->vars (no deleted copies),
 * the rest of its variable area erased (0xff); or NULL with @errp set
 * if they do not fit.
 */
GByteArray *edk2_varstore_serialize(Edk2VarStore *s, Error **errp);

/**
 * edk2_varstore_find:
 *
 * Returns: the index in @s->vars of variable @name of vendor @guid, or
 * -1.
 */
int edk2_varstore_find(Edk2VarStore *s, const char *name,
                       const QemuUUID *guid);

/**
 * edk2_varstore_set:
 *
 * Set variable @name of vendor @guid (created at the end of the store
 * if absent): its attributes, data and timestamp; @time may be NULL
 * (zero, as for variables that are not time-authenticated).
 *
 * Returns: false with @errp set if @name is not a valid variable name
 * (empty, or not in UCS-2).
 */
bool edk2_varstore_set(Edk2VarStore *s, const char *name,
                       const QemuUUID *guid, uint32_t attr,
                       const uint8_t *time, const uint8_t *data, size_t len,
                       Error **errp);

/**
 * edk2_varstore_delete:
 *
 * Returns: whether variable @name of vendor @guid existed.
 */
bool edk2_varstore_delete(Edk2VarStore *s, const char *name,
                          const QemuUUID *guid);

/**
 * edk2_varstore_to_qapi:
 *
 * Returns: the variables of @s as QEMU's JSON variable store
 * (qapi/uefi.json, version 2).
 */
UefiVarStore *edk2_varstore_to_qapi(Edk2VarStore *s);

/**
 * edk2_varstore_from_qapi:
 *
 * Replace the variables of @s with those of @q.
 *
 * Returns: false with @errp set, @s unchanged, if a variable of @q is
 * not valid (name, GUID, attributes, hexadecimal data or time).
 */
bool edk2_varstore_from_qapi(Edk2VarStore *s, UefiVarStore *q,
                             Error **errp);

/**
 * edk2_guid_name:
 *
 * Returns: the name of a well-known vendor GUID (as virt-firmware and
 * edk2 name them), or NULL.
 */
const char *edk2_guid_name(const QemuUUID *guid);

/**
 * edk2_guid_parse:
 *
 * Parse @str, a GUID or the name of a well-known one, into @guid.
 *
 * Returns: false with @errp set if it is neither.
 */
bool edk2_guid_parse(const char *str, QemuUUID *guid, Error **errp);

#endif /* QEMU_EDK2_VARSTORE_H */
