/*
 * wdk-sim: DbgPrint and DbgPrintEx, the kernel's variadic debug print routines.
 *
 * wdk-sys declares them as C-variadic functions, which stable Rust can call but not define, so
 * the simulated kernel defines them here in C with the same prototypes: the message is formatted
 * with vsnprintf into a 512-byte buffer (the kernel's limit for one DbgPrint call; longer text is
 * cut there, as the debugger shows it) and handed to wdk-sim (sim/src/ntddk/debug.rs), which
 * keeps it in the machine's debug print buffer.
 *
 * Formats: the C99 conversions (%s, %d, %u, %x, %p, %c, widths, %ll) behave as on Windows. The
 * Windows-only ones (%ws, %wZ, %Z, %I64x) are not understood by glibc; RHCA's driver uses none
 * of them (docs/sim-fidelity.md).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

unsigned int wdk_sim_debug_print(unsigned int component, unsigned int level, const char *text,
                                 size_t len);

/* _DPFLTR_TYPE::DPFLTR_DEFAULT_ID and DPFLTR_INFO_LEVEL: what DbgPrint is DbgPrintEx with. */
#define DPFLTR_DEFAULT_ID 101u
#define DPFLTR_INFO_LEVEL 3u
/* STATUS_INVALID_PARAMETER, for a format vsnprintf refuses. */
#define STATUS_INVALID_PARAMETER 0xC000000Du

static unsigned int print(unsigned int component, unsigned int level, const char *format,
                          va_list ap) {
    char buf[512];
    int n;
    size_t len;
    if (format == NULL) {
        return STATUS_INVALID_PARAMETER;
    }
    n = vsnprintf(buf, sizeof buf, format, ap);
    if (n < 0) {
        return STATUS_INVALID_PARAMETER;
    }
    len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    return wdk_sim_debug_print(component, level, buf, len);
}

unsigned int DbgPrintEx(unsigned int ComponentId, unsigned int Level, const char *Format, ...) {
    va_list ap;
    unsigned int status;
    va_start(ap, Format);
    status = print(ComponentId, Level, Format, ap);
    va_end(ap);
    return status;
}

unsigned int DbgPrint(const char *Format, ...) {
    va_list ap;
    unsigned int status;
    va_start(ap, Format);
    status = print(DPFLTR_DEFAULT_ID, DPFLTR_INFO_LEVEL, Format, ap);
    va_end(ap);
    return status;
}
