// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Endpoints: opening and closing /dev/pcb.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

PCB_EXPORT int pcb_open(struct pcb **out)
{
	struct pcb *bus;

	if (!out)
		return -EINVAL;
	bus = calloc(1, sizeof(*bus));
	if (!bus)
		return -ENOMEM;
	bus->fd = open(PCB_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (bus->fd < 0) {
		int ret = -errno;

		free(bus);
		return ret;
	}
	*out = bus;
	return 0;
}

PCB_EXPORT void pcb_close(struct pcb *bus)
{
	if (!bus)
		return;
	if (bus->ro_map)
		munmap(bus->ro_map, bus->ro_map_len);
	if (bus->cons_map)
		munmap(bus->cons_map, bus->cons_map_len);
	close(bus->fd);
	free(bus);
}

PCB_EXPORT int pcb_fd(const struct pcb *bus)
{
	return bus ? bus->fd : -EINVAL;
}
