// SPDX-License-Identifier: GPL-2.0
/*
 * probe - small uses of /dev/pcb for guest-check, each one process (every
 * process started costs a tenth of a second in the emulated VM).
 *
 *   probe use NAME  create topic NAME, subscribe to it, publish a message,
 *                   read it back and delete the topic
 *   probe hold      set up a ring, map it, close the descriptor, print
 *                   "ready" and wait to be killed: the mapping alone must
 *                   keep the endpoint, and so the module, in use
 *
 * Exit status 0 on success, 1 (with a message) on a failure, 2 on a usage
 * error.  guest-check builds it in the VM against lib/libpcb.a.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <libpcb.h>

#define RECEIVE_TIMEOUT_NS	5000000000ULL

static const char payload[] = "pcb probe";

static int fail(const char *what, int err)
{
	fprintf(stderr, "probe: %s: %s\n", what, strerror(err));
	return 1;
}

/* Publish one message on @name to our own ring and read it back. */
static int exchange(struct pcb *bus, const char *name)
{
	struct pcb_msg msg;
	uint64_t id;
	int handle, ret;

	ret = pcb_ring_setup(bus, PCB_RING_MIN_SIZE);
	if (ret)
		return fail("ring setup", -ret);
	ret = pcb_subscribe(bus, name, 0, 0, NULL);
	if (ret)
		return fail("subscribe", -ret);
	handle = pcb_topic_open(bus, name, 0);
	if (handle < 0)
		return fail("topic open", -handle);
	ret = pcb_publish(bus, handle, payload, sizeof(payload), 42, 0, &id);
	if (ret)
		return fail("publish", -ret);
	ret = pcb_receive(bus, &msg, RECEIVE_TIMEOUT_NS);
	if (ret < 0)
		return fail("receive", -ret);
	if (msg.rec->msg_id != id || msg.rec->key != 42 ||
	    msg.len != sizeof(payload) || memcmp(msg.data, payload, msg.len)) {
		fprintf(stderr, "probe: received another message than published\n");
		return 1;
	}
	pcb_release(bus, &msg);
	return 0;
}

static int use(const char *name)
{
	struct pcb_topic_opts opts = PCB_TOPIC_OPTS_DEFAULT;
	struct pcb *bus;
	int ret, del;

	/* Small enough for the smallest ring to hold its largest record. */
	opts.max_msg_size = 64;
	ret = pcb_open(&bus);
	if (ret)
		return fail(PCB_DEVICE_PATH, -ret);
	ret = pcb_topic_create(bus, name, &opts, NULL);
	if (ret) {
		pcb_close(bus);
		return fail("topic create", -ret);
	}
	ret = exchange(bus, name);
	del = pcb_topic_delete(bus, name);
	if (del && !ret)
		ret = fail("topic delete", -del);
	pcb_close(bus);
	return ret;
}

static int hold(void)
{
	struct pcb_ring_setup rs;
	int fd;

	fd = open(PCB_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return fail(PCB_DEVICE_PATH, errno);
	memset(&rs, 0, sizeof(rs));
	rs.data_size = PCB_RING_MIN_SIZE;
	if (ioctl(fd, PCB_IOC_RING_SETUP, &rs))
		return fail("PCB_IOC_RING_SETUP", errno);
	if (mmap(NULL, rs.mmap_size, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED)
		return fail("mmap", errno);
	if (close(fd))
		return fail("close", errno);

	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "use"))
		return use(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "hold"))
		return hold();
	fprintf(stderr, "usage: probe use NAME | probe hold\n");
	return 2;
}
