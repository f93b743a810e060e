/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel API differences, all in one place.  The PCB_HAVE_* macros come
 * from feature probes of the kernel's headers in Kbuild; nothing outside
 * this file depends on them.
 */
#ifndef _PCB_COMPAT_H
#define _PCB_COMPAT_H

#include <linux/mm.h>

#ifdef PCB_HAVE_VM_FLAGS_CLEAR
static inline void pcb_vma_clear_maywrite(struct vm_area_struct *vma)
{
	vm_flags_clear(vma, VM_MAYWRITE);
}
#else
/* vm_flags became read-only behind vm_flags_*() helpers in 6.3. */
static inline void pcb_vma_clear_maywrite(struct vm_area_struct *vma)
{
	vma->vm_flags &= ~VM_MAYWRITE;
}
#endif

#endif /* _PCB_COMPAT_H */
