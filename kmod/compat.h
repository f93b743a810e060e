/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel API differences, all in one place.  The PCB_HAVE_* macros come
 * from feature probes of the kernel's headers in Kbuild; nothing outside
 * this file depends on them.
 */
#ifndef _PCB_COMPAT_H
#define _PCB_COMPAT_H

#include <linux/mm.h>
#include <linux/fs.h>
#include <linux/ipc_namespace.h>
#include <linux/proc_ns.h>

#ifdef PCB_HAVE_IO_URING_CMD_H
#include <linux/io_uring/cmd.h>
#else
#include <linux/io_uring.h>
#endif

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

/*
 * The command area of the SQE: io_uring_cmd carries a pointer to the SQE
 * from 6.4 on, a pointer to the command area before.
 */
#ifdef PCB_HAVE_IO_URING_SQE_CMD
static inline const void *pcb_uring_cmd_data(const struct io_uring_cmd *cmd)
{
	return io_uring_sqe_cmd(cmd->sqe);
}
#else
static inline const void *pcb_uring_cmd_data(const struct io_uring_cmd *cmd)
{
	return cmd->cmd;
}
#endif

static inline struct file *pcb_uring_cmd_file(const struct io_uring_cmd *cmd)
{
	return cmd->file;
}

/* The SQE named a registered buffer (IORING_URING_CMD_FIXED). */
static inline bool pcb_uring_cmd_fixed(const struct io_uring_cmd *cmd)
{
	return cmd->flags & IORING_URING_CMD_FIXED;
}

/*
 * Tracepoints: __assign_str() lost its source argument in 6.10 (the
 * source is the one given to __string()).
 */
#ifdef PCB_HAVE_ASSIGN_STR_ONE_ARG
#define pcb_assign_str(dst, src)	__assign_str(dst)
#else
#define pcb_assign_str(dst, src)	__assign_str(dst, src)
#endif

/*
 * put_ipc_ns() is exported by newer kernels (6.12), not by 6.1, where the
 * namespace's own operations drop the reference: ipcns_operations.put
 * is put_ipc_ns().
 */
#ifdef PCB_HAVE_PUT_IPC_NS
static inline void pcb_put_ipc_ns(struct ipc_namespace *ns)
{
	put_ipc_ns(ns);
}
#else
static inline void pcb_put_ipc_ns(struct ipc_namespace *ns)
{
	ns->ns.ops->put(&ns->ns);
}
#endif

#endif /* _PCB_COMPAT_H */
