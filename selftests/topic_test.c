// SPDX-License-Identifier: GPL-2.0
/*
 * Topics: create, info, list, delete, open/close for publishing, and the
 * errors common to every ioctl (ENOTTY, EFAULT).
 */
#include "pcb_util.h"

FIXTURE(topic) {
	int fd;
	char name[PCB_NAME_MAX];
};

FIXTURE_SETUP(topic)
{
	PCBT_OPEN(self->fd);
	pcbt_name(self->name, "t");
}

FIXTURE_TEARDOWN(topic)
{
	pcbt_cleanup();
	if (self->fd >= 0)
		close(self->fd);
}

static void fill_create(struct pcb_topic_create *tc, const char *name)
{
	memset(tc, 0, sizeof(*tc));
	pcbt_copy_name(tc->name, name);
	tc->schema_id = 42;
	tc->max_msg_size = 128;
	tc->mode = 0640;
	tc->uid = PCB_OWNER_CALLER;
	tc->gid = PCB_OWNER_CALLER;
}

TEST_F(topic, create_and_info)
{
	struct pcb_topic_create tc;
	struct pcb_topic_info info;
	unsigned int i;

	fill_create(&tc, self->name);
	tc.schema_id = 0x0123456789abcdefULL;
	ASSERT_EQ(0, pcbt_create_raw(self->fd, &tc));
	ASSERT_NE(0U, tc.topic_id);
	for (i = 0; i < 4; i++)
		EXPECT_EQ(0ULL, tc.reserved[i]);

	ASSERT_EQ(0, pcbt_info(self->fd, self->name, &info));
	EXPECT_STREQ(self->name, info.name);
	EXPECT_EQ(0x0123456789abcdefULL, info.schema_id);
	EXPECT_EQ(128U, info.max_msg_size);
	EXPECT_EQ(0640U, info.mode);
	EXPECT_EQ((__u32)geteuid(), info.uid);
	EXPECT_EQ((__u32)getegid(), info.gid);
	EXPECT_EQ(0U, info.flags);
	EXPECT_EQ(tc.topic_id, info.topic_id);
	EXPECT_EQ(0U, info.nr_subscribers);
	EXPECT_EQ(0ULL, info.published);
	EXPECT_EQ(0U, info.reserved0);
	for (i = 0; i < 4; i++)
		EXPECT_EQ(0ULL, info.reserved[i]);
}

TEST_F(topic, schema_zero_and_mode_zero_are_valid)
{
	struct pcb_topic_info info;

	ASSERT_EQ(0, pcbt_create(self->fd, self->name, 0, 1, 0, NULL));
	ASSERT_EQ(0, pcbt_info(self->fd, self->name, &info));
	EXPECT_EQ(0ULL, info.schema_id);
	EXPECT_EQ(1U, info.max_msg_size);
	EXPECT_EQ(0U, info.mode);
}

/*
 * Ids are taken in turn, so a deleted topic's id does not come back
 * until some 2^32 topics later (a wrap no test run comes near).
 */
TEST_F(topic, ids_never_zero_taken_in_turn)
{
	char other[PCB_NAME_MAX];
	__u32 a, b, c;

	pcbt_name(other, "o");
	ASSERT_EQ(0, pcbt_create(self->fd, self->name, 1, 8, 0600, &a));
	ASSERT_EQ(0, pcbt_create(self->fd, other, 1, 8, 0600, &b));
	EXPECT_NE(0U, a);
	EXPECT_NE(0U, b);
	EXPECT_LT(a, b);
	ASSERT_EQ(0, pcbt_delete(self->fd, self->name));
	ASSERT_EQ(0, pcbt_create(self->fd, self->name, 1, 8, 0600, &c));
	EXPECT_LT(b, c);
}

TEST_F(topic, create_eexist)
{
	ASSERT_EQ(0, pcbt_create(self->fd, self->name, 1, 64, 0644, NULL));
	EXPECT_EQ(-EEXIST, pcbt_create(self->fd, self->name, 1, 64, 0644, NULL));
	/* Different attributes do not make it another topic. */
	EXPECT_EQ(-EEXIST, pcbt_create(self->fd, self->name, 2, 32, 0600, NULL));
}

TEST_F(topic, name_lengths)
{
	struct pcb_topic_create tc;
	char longest[PCB_NAME_MAX];

	/* 63 characters and the NUL: the longest valid name. */
	snprintf(longest, sizeof(longest), "pcbt-%d-", (int)getpid());
	memset(longest + strlen(longest), 'x',
	       PCB_NAME_MAX - 1 - strlen(longest));
	longest[PCB_NAME_MAX - 1] = '\0';
	pcbt_remember(longest);
	fill_create(&tc, longest);
	EXPECT_EQ(0, pcbt_create_raw(self->fd, &tc));

	/* 64 bytes without a NUL. */
	fill_create(&tc, "");
	memset(tc.name, 'y', PCB_NAME_MAX);
	EXPECT_EQ(-ENAMETOOLONG, pcbt_create_raw(self->fd, &tc));
}

TEST_F(topic, name_characters)
{
	static const char * const bad[] = {
		"", ".hidden", "..", ".", "a b", "a*b", "a\tb", "a\nb",
		"caf\xc3\xa9", "a\\b", "a,b", "a@b", "a+b", "\x7f",
	};
	struct pcb_topic_create tc;
	char good[PCB_NAME_MAX];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		fill_create(&tc, bad[i]);
		EXPECT_EQ(-EINVAL, pcbt_create_raw(self->fd, &tc))
			TH_LOG("name \"%s\"", bad[i]);
	}

	/* Every allowed character, a '.' anywhere but first. */
	snprintf(good, sizeof(good), "pcbt-%d-azAZ09._:/-.", (int)getpid());
	pcbt_remember(good);
	fill_create(&tc, good);
	EXPECT_EQ(0, pcbt_create_raw(self->fd, &tc));
}

/*
 * A user's name, "~UID/rest": malformed ones are EINVAL; a well-formed
 * one is only ever a topic owned by UID (EPERM for any other owner, root
 * included), so nobody can squat it.
 */
TEST_F(topic, user_names)
{
	static const char * const bad[] = {
		"~", "~/", "~/x", "~0", "~0/", "~01/x", "~00/x", "~-1/x",
		"~+1/x", "~1x/y", "~ 1/x", "~1 /x", "~0x1/y", "~~1/x",
		"~1/~2", "~1/a b", "a~b", "x/~1/y",
	};
	struct pcb_topic_create tc;
	struct pcb_topic_info info;
	char name[PCB_NAME_MAX];
	uid_t me = geteuid();
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		fill_create(&tc, bad[i]);
		EXPECT_EQ(-EINVAL, pcbt_create_raw(self->fd, &tc))
			TH_LOG("name \"%s\"", bad[i]);
	}

	/* Our own name, '/' and '.' allowed in the rest. */
	snprintf(name, sizeof(name), "~%u/pcbt-%d/a.b", (unsigned int)me,
		 (int)getpid());
	pcbt_remember(name);
	fill_create(&tc, name);
	ASSERT_EQ(0, pcbt_create_raw(self->fd, &tc));
	ASSERT_EQ(0, pcbt_info(self->fd, name, &info));
	EXPECT_EQ((__u32)me, info.uid);

	/* Someone else's: refused, and nothing created. */
	snprintf(name, sizeof(name), "~%u/pcbt-%d-u", (unsigned int)me + 1,
		 (int)getpid());
	pcbt_remember(name);
	fill_create(&tc, name);
	EXPECT_EQ(-EPERM, pcbt_create_raw(self->fd, &tc));
	EXPECT_EQ(-ENOENT, pcbt_info(self->fd, name, &info));
	/* Root may give it to its user, and then it exists. */
	if (pcbt_is_root()) {
		tc.uid = me + 1;
		EXPECT_EQ(0, pcbt_create_raw(self->fd, &tc));
		ASSERT_EQ(0, pcbt_info(self->fd, name, &info));
		EXPECT_EQ((__u32)me + 1, info.uid);
	}
	/* Another user's name, given to ourselves explicitly. */
	snprintf(name, sizeof(name), "~%u/pcbt-%d-v", me ? 0U : 1U,
		 (int)getpid());
	pcbt_remember(name);
	fill_create(&tc, name);
	tc.uid = me;
	EXPECT_EQ(-EPERM, pcbt_create_raw(self->fd, &tc));
	EXPECT_EQ(-ENOENT, pcbt_info(self->fd, name, &info));
}

TEST_F(topic, max_msg_size_limits)
{
	unsigned long long limit = pcbt_param("max_msg_size", 1 << 20);
	struct pcb_topic_create tc;
	char big[PCB_NAME_MAX];

	fill_create(&tc, self->name);
	tc.max_msg_size = 0;
	EXPECT_EQ(-EINVAL, pcbt_create_raw(self->fd, &tc));
	tc.max_msg_size = (__u32)limit + 1;
	EXPECT_EQ(-EINVAL, pcbt_create_raw(self->fd, &tc));
	tc.max_msg_size = UINT32_MAX;
	EXPECT_EQ(-EINVAL, pcbt_create_raw(self->fd, &tc));

	pcbt_name(big, "big");
	fill_create(&tc, big);
	tc.max_msg_size = (__u32)limit;
	EXPECT_EQ(0, pcbt_create_raw(self->fd, &tc));
}

TEST_F(topic, mode_bits)
{
	static const __u32 bad[] = { 01000, 02000, 04000, 010000, 0100644,
				     0x80000000 };
	struct pcb_topic_create tc;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		fill_create(&tc, self->name);
		tc.mode = bad[i];
		EXPECT_EQ(-EINVAL, pcbt_create_raw(self->fd, &tc))
			TH_LOG("mode %#o", bad[i]);
	}
	fill_create(&tc, self->name);
	tc.mode = 0777;
	EXPECT_EQ(0, pcbt_create_raw(self->fd, &tc));
}

TEST_F(topic, create_flags_and_reserved)
{
	struct pcb_topic_create tc;
	unsigned int i;

	fill_create(&tc, self->name);
	tc.flags = 1;
	EXPECT_EQ(-EINVAL, pcbt_create_raw(self->fd, &tc));
	tc.flags = 0x80000000;
	EXPECT_EQ(-EINVAL, pcbt_create_raw(self->fd, &tc));
	for (i = 0; i < 4; i++) {
		fill_create(&tc, self->name);
		tc.reserved[i] = 1ULL << (i * 16);
		EXPECT_EQ(-EINVAL, pcbt_create_raw(self->fd, &tc))
			TH_LOG("reserved[%u]", i);
	}
	/* None of the failures left a topic behind. */
	EXPECT_EQ(-ENOENT, pcbt_nr_subs(self->fd, self->name));
}

TEST_F(topic, owner_caller_and_explicit_self)
{
	struct pcb_topic_create tc;
	struct pcb_topic_info info;
	char other[PCB_NAME_MAX];

	fill_create(&tc, self->name);
	ASSERT_EQ(0, pcbt_create_raw(self->fd, &tc));
	ASSERT_EQ(0, pcbt_info(self->fd, self->name, &info));
	EXPECT_EQ((__u32)geteuid(), info.uid);
	EXPECT_EQ((__u32)getegid(), info.gid);

	/* Naming oneself explicitly is not "another owner". */
	pcbt_name(other, "self");
	fill_create(&tc, other);
	tc.uid = geteuid();
	tc.gid = getegid();
	ASSERT_EQ(0, pcbt_create_raw(self->fd, &tc));
	ASSERT_EQ(0, pcbt_info(self->fd, other, &info));
	EXPECT_EQ((__u32)geteuid(), info.uid);
	EXPECT_EQ((__u32)getegid(), info.gid);
}

TEST_F(topic, owner_other_as_root)
{
	struct pcb_topic_create tc;
	struct pcb_topic_info info;

	if (!pcbt_is_root())
		SKIP(return, "needs root (CAP_CHOWN)");
	fill_create(&tc, self->name);
	tc.uid = 1234;
	tc.gid = 5678;
	ASSERT_EQ(0, pcbt_create_raw(self->fd, &tc));
	ASSERT_EQ(0, pcbt_info(self->fd, self->name, &info));
	EXPECT_EQ(1234U, info.uid);
	EXPECT_EQ(5678U, info.gid);
}

struct owner_args {
	int fd;
	const char *name;
};

static int create_foreign_owner(void *arg)
{
	struct owner_args *a = arg;
	int fd = pcbt_child_fd(a->fd);
	struct pcb_topic_create tc;

	fill_create(&tc, a->name);
	tc.uid = geteuid() == 0 ? 1 : 0;
	PCBT_CHILD_EXPECT(-EPERM, pcbt_create_raw(fd, &tc));

	fill_create(&tc, a->name);
	tc.gid = getegid() == 0 ? 1 : 0;
	PCBT_CHILD_EXPECT(-EPERM, pcbt_create_raw(fd, &tc));

	fill_create(&tc, a->name);
	tc.uid = geteuid() + 1;
	tc.gid = getegid() + 1;
	PCBT_CHILD_EXPECT(-EPERM, pcbt_create_raw(fd, &tc));

	/* And nothing was created by the refusals. */
	PCBT_CHILD_EXPECT(-ENOENT, pcbt_nr_subs(fd, a->name));
	return 0;
}

TEST_F(topic, owner_other_eperm)
{
	struct owner_args a = { .fd = self->fd, .name = self->name };

	int ret;

	if (pcbt_is_root())
		ret = pcbt_run_as_nobody(create_foreign_owner, &a);
	else
		ret = create_foreign_owner(&a);
	ASSERT_EQ(0, ret);
}

TEST_F(topic, info_errors)
{
	struct pcb_topic_info info;

	EXPECT_EQ(-ENOENT, pcbt_info(self->fd, self->name, &info));

	ASSERT_EQ(0, pcbt_create(self->fd, self->name, 1, 8, 0600, NULL));
	memset(&info, 0, sizeof(info));
	pcbt_copy_name(info.name, self->name);
	info.reserved[3] = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_INFO, &info));

	memset(&info, 0, sizeof(info));
	memset(info.name, 'z', PCB_NAME_MAX);
	EXPECT_EQ(-ENAMETOOLONG, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_INFO, &info));

	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_INFO, NULL));

	/* The name rules hold for lookups too. */
	EXPECT_EQ(-EINVAL, pcbt_info(self->fd, "", &info));
	EXPECT_EQ(-EINVAL, pcbt_info(self->fd, ".dot", &info));
	EXPECT_EQ(-EINVAL, pcbt_info(self->fd, "a b", &info));
}

/* Lists every topic from @start, @cap at a time, into @out; -errno or count. */
static int list_all(int fd, __u32 cap, struct pcb_topic_info *out, int max,
		    int *calls)
{
	struct pcb_topic_info *page = calloc(cap, sizeof(*page));
	struct pcb_topic_list l = { .capacity = cap, .start_id = 0 };
	int n = 0, ret = 0;

	*calls = 0;
	do {
		memset(page, 0xa5, cap * sizeof(*page));
		l.entries = (uintptr_t)page;
		l.count = 0xdead;
		ret = pcbt_ioctl(fd, PCB_IOC_TOPIC_LIST, &l);
		if (ret)
			break;
		(*calls)++;
		if (l.count > cap) {
			ret = -ERANGE;
			break;
		}
		for (__u32 i = 0; i < l.count && n < max; i++)
			out[n++] = page[i];
		if (l.next_id && l.next_id <= l.start_id) {
			ret = -ELOOP;
			break;
		}
		l.start_id = l.next_id;
	} while (l.start_id);
	free(page);
	return ret ? ret : n;
}

TEST_F(topic, list_paginates)
{
	enum { NR = 5, MAX = 4096 };
	struct pcb_topic_info *all = calloc(MAX, sizeof(*all));
	char names[NR][PCB_NAME_MAX];
	__u32 ids[NR];
	int found[NR] = { 0 };
	int n, calls, i, j;

	ASSERT_NE(NULL, all);
	for (i = 0; i < NR; i++) {
		pcbt_name(names[i], "list");
		ASSERT_EQ(0, pcbt_create(self->fd, names[i], 100 + i, 10 + i,
					 0600 + i, &ids[i]));
	}

	n = list_all(self->fd, 2, all, MAX, &calls);
	ASSERT_LT(0, n);
	EXPECT_GE(calls, (NR + 1) / 2);
	for (i = 0; i < n; i++) {
		unsigned int k;

		if (i)
			EXPECT_LT(all[i - 1].topic_id, all[i].topic_id);
		EXPECT_EQ(0U, all[i].reserved0);
		for (k = 0; k < 4; k++)
			EXPECT_EQ(0ULL, all[i].reserved[k]);
		for (j = 0; j < NR; j++) {
			if (strcmp(all[i].name, names[j]))
				continue;
			found[j]++;
			EXPECT_EQ(ids[j], all[i].topic_id);
			EXPECT_EQ(100ULL + j, all[i].schema_id);
			EXPECT_EQ(10U + j, all[i].max_msg_size);
			EXPECT_EQ(0600U + j, all[i].mode);
			EXPECT_EQ((__u32)geteuid(), all[i].uid);
		}
	}
	for (j = 0; j < NR; j++) {
		EXPECT_EQ(1, found[j]) TH_LOG("topic %s", names[j]);
	}

	/* Starting at our last id lists it first. */
	{
		struct pcb_topic_info one;
		struct pcb_topic_list l = {
			.entries = (uintptr_t)&one,
			.capacity = 1,
			.start_id = ids[NR - 1],
		};

		ASSERT_EQ(0, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_LIST, &l));
		ASSERT_EQ(1U, l.count);
		EXPECT_EQ(ids[NR - 1], one.topic_id);
		EXPECT_STREQ(names[NR - 1], one.name);
		EXPECT_TRUE(l.next_id == 0 || l.next_id > ids[NR - 1]);
	}
	free(all);
}

TEST_F(topic, list_past_the_end)
{
	struct pcb_topic_info one;
	struct pcb_topic_list l = {
		.entries = (uintptr_t)&one,
		.capacity = 1,
		.start_id = UINT32_MAX,
	};

	ASSERT_EQ(0, pcbt_create(self->fd, self->name, 1, 8, 0600, NULL));
	ASSERT_EQ(0, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_LIST, &l));
	EXPECT_EQ(0U, l.count);
	EXPECT_EQ(0U, l.next_id);
}

TEST_F(topic, list_errors)
{
	struct pcb_topic_list l = { .capacity = 4 };
	struct pcb_topic_info *ro;
	long page = sysconf(_SC_PAGESIZE);

	ASSERT_EQ(0, pcbt_create(self->fd, self->name, 1, 8, 0600, NULL));

	l.entries = 8;
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_LIST, &l));

	/* Readable but not writable. */
	ro = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	l.entries = (uintptr_t)ro;
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_LIST, &l));
	munmap(ro, page);

	l.entries = 0;
	l.reserved[1] = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_LIST, &l));

	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_LIST,
				      (void *)16));
}

TEST_F(topic, delete)
{
	struct pcb_topic_name tn = { 0 };

	EXPECT_EQ(-ENOENT, pcbt_delete(self->fd, self->name));
	ASSERT_EQ(0, pcbt_create(self->fd, self->name, 1, 8, 0600, NULL));

	pcbt_copy_name(tn.name, self->name);
	tn.reserved[0] = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_DELETE, &tn));
	tn.reserved[0] = 0;
	tn.reserved[1] = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_DELETE, &tn));

	memset(tn.name, 'q', PCB_NAME_MAX);
	tn.reserved[1] = 0;
	EXPECT_EQ(-ENAMETOOLONG, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_DELETE, &tn));
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_DELETE, NULL));

	ASSERT_EQ(0, pcbt_delete(self->fd, self->name));
	EXPECT_EQ(-ENOENT, pcbt_nr_subs(self->fd, self->name));
	EXPECT_EQ(-ENOENT, pcbt_delete(self->fd, self->name));
	/* The name is free at once. */
	EXPECT_EQ(0, pcbt_create(self->fd, self->name, 2, 16, 0600, NULL));
}

static int delete_foreign(void *arg)
{
	struct owner_args *a = arg;
	int fd = pcbt_child_fd(a->fd);

	PCBT_CHILD_EXPECT(-EPERM, pcbt_delete(fd, a->name));
	return 0;
}

TEST_F(topic, delete_eperm_non_owner)
{
	struct owner_args a = { .fd = self->fd, .name = self->name };

	if (!pcbt_is_root())
		SKIP(return, "needs root to make a topic of another user");
	/* Even with every mode bit: only the owner may delete. */
	ASSERT_EQ(0, pcbt_create(self->fd, self->name, 1, 8, 0777, NULL));
	ASSERT_EQ(0, pcbt_run_as_nobody(delete_foreign, &a));
	EXPECT_EQ(0LL, pcbt_nr_subs(self->fd, self->name));
}

static int create_delete_own(void *arg)
{
	struct owner_args *a = arg;
	int fd = pcbt_child_fd(a->fd);

	PCBT_CHILD_EXPECT(0, pcbt_create(fd, a->name, 1, 8, 0600, NULL));
	PCBT_CHILD_EXPECT(0, pcbt_delete(fd, a->name));
	PCBT_CHILD_EXPECT(-ENOENT, pcbt_nr_subs(fd, a->name));
	return 0;
}

TEST_F(topic, owner_deletes_own_topic)
{
	struct owner_args a = { .fd = self->fd, .name = self->name };

	int ret;

	if (pcbt_is_root())
		ret = pcbt_run_as_nobody(create_delete_own, &a);
	else
		ret = create_delete_own(&a);
	ASSERT_EQ(0, ret);
}

TEST_F(topic, open_for_publishing)
{
	struct pcb_topic_open to = { .schema_id = 9 };
	__u32 id, h2;

	ASSERT_EQ(0, pcbt_create(self->fd, self->name, 9, 333, 0600, &id));
	pcbt_copy_name(to.name, self->name);
	ASSERT_EQ(0, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_OPEN, &to));
	EXPECT_EQ(id, to.topic_id);
	EXPECT_EQ(333U, to.max_msg_size);
	EXPECT_EQ(0ULL, to.reserved[0]);
	EXPECT_EQ(0ULL, to.reserved[1]);

	/* A second handle on the same topic is another handle. */
	ASSERT_EQ(0, pcbt_open_topic(self->fd, self->name, 9, &h2));
	EXPECT_NE(to.handle, h2);
	EXPECT_EQ(0, pcbt_close_topic(self->fd, to.handle));
	EXPECT_EQ(0, pcbt_close_topic(self->fd, h2));
}

TEST_F(topic, open_errors)
{
	struct pcb_topic_open to = { 0 };

	EXPECT_EQ(-ENOENT, pcbt_open_topic(self->fd, self->name, 9, NULL));
	ASSERT_EQ(0, pcbt_create(self->fd, self->name, 9, 8, 0600, NULL));
	EXPECT_EQ(-EPROTOTYPE, pcbt_open_topic(self->fd, self->name, 10, NULL));
	EXPECT_EQ(-EPROTOTYPE, pcbt_open_topic(self->fd, self->name, 0, NULL));
	EXPECT_EQ(-EPROTOTYPE, pcbt_open_topic(self->fd, self->name,
					       9 | (1ULL << 63), NULL));

	pcbt_copy_name(to.name, self->name);
	to.schema_id = 9;
	to.flags = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_OPEN, &to));
	to.flags = 0;
	to.reserved[1] = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_OPEN, &to));
	to.reserved[1] = 0;
	memset(to.name, 'n', PCB_NAME_MAX);
	EXPECT_EQ(-ENAMETOOLONG, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_OPEN, &to));
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_OPEN, NULL));
}

static int open_without_write(void *arg)
{
	struct owner_args *a = arg;
	int fd = pcbt_child_fd(a->fd);

	PCBT_CHILD_EXPECT(-EACCES, pcbt_open_topic(fd, a->name, 5, NULL));
	return 0;
}

TEST_F(topic, open_eacces)
{
	struct owner_args a = { .fd = self->fd, .name = self->name };

	if (!pcbt_is_root())
		SKIP(return, "needs root to make a topic of another user");
	ASSERT_EQ(0, pcbt_create(self->fd, self->name, 5, 8, 0644, NULL));
	ASSERT_EQ(0, pcbt_run_as_nobody(open_without_write, &a));
}

TEST_F_TIMEOUT(topic, open_emfile, 120)
{
	__u32 first = 0, h;
	int i, fd2, ret = 0;

	ASSERT_EQ(0, pcbt_create(self->fd, self->name, 1, 8, 0600, NULL));
	for (i = 0; i < PCB_MAX_HANDLES; i++) {
		ret = pcbt_open_topic(self->fd, self->name, 1, &h);
		if (ret)
			break;
		if (!i)
			first = h;
	}
	ASSERT_EQ(0, ret) TH_LOG("open #%d failed", i);
	EXPECT_EQ(-EMFILE, pcbt_open_topic(self->fd, self->name, 1, &h));

	/* The limit is per endpoint ... */
	PCBT_OPEN(fd2);
	EXPECT_EQ(0, pcbt_open_topic(fd2, self->name, 1, &h));
	close(fd2);

	/* ... and a closed handle makes room again. */
	ASSERT_EQ(0, pcbt_close_topic(self->fd, first));
	EXPECT_EQ(0, pcbt_open_topic(self->fd, self->name, 1, &h));
	EXPECT_EQ(-EMFILE, pcbt_open_topic(self->fd, self->name, 1, &h));
}

TEST_F(topic, close_errors)
{
	struct pcb_topic_close tc = { 0 };
	__u32 h;
	char byte = 0;

	EXPECT_EQ(-EBADF, pcbt_close_topic(self->fd, 0));
	EXPECT_EQ(-EBADF, pcbt_close_topic(self->fd, 0xdeadbeef));
	ASSERT_EQ(0, pcbt_create(self->fd, self->name, 1, 8, 0600, NULL));
	ASSERT_EQ(0, pcbt_open_topic(self->fd, self->name, 1, &h));

	tc.handle = h;
	tc.reserved0 = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_CLOSE, &tc));
	tc.reserved0 = 0;
	tc.reserved[0] = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_CLOSE, &tc));
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_CLOSE, NULL));

	ASSERT_EQ(0, pcbt_close_topic(self->fd, h));
	EXPECT_EQ(-EBADF, pcbt_close_topic(self->fd, h));
	EXPECT_EQ(-EBADF, pcbt_publish(self->fd, h, &byte, 1, 0, 0, NULL));
}

TEST_F(topic, handles_belong_to_their_endpoint)
{
	__u32 h;
	char byte = 0;
	int fd2;

	ASSERT_EQ(0, pcbt_create(self->fd, self->name, 1, 8, 0600, NULL));
	ASSERT_EQ(0, pcbt_open_topic(self->fd, self->name, 1, &h));
	PCBT_OPEN(fd2);
	EXPECT_EQ(-EBADF, pcbt_publish(fd2, h, &byte, 1, 0, 0, NULL));
	EXPECT_EQ(-EBADF, pcbt_close_topic(fd2, h));
	close(fd2);
	EXPECT_EQ(0, pcbt_publish(self->fd, h, &byte, 1, 0, 0, NULL));
}

TEST_F(topic, unknown_ioctl_enotty)
{
	int arg[64] = { 0 };

	EXPECT_EQ(-ENOTTY, pcbt_ioctl(self->fd, _IO(PCB_IOC_MAGIC, 0x7f), arg));
	EXPECT_EQ(-ENOTTY, pcbt_ioctl(self->fd, _IO(PCB_IOC_MAGIC, 0), arg));
	EXPECT_EQ(-ENOTTY, pcbt_ioctl(self->fd, _IOWR(PCB_IOC_MAGIC, 0x01, int),
				      arg));
	EXPECT_EQ(-ENOTTY, pcbt_ioctl(self->fd, _IOR(PCB_IOC_MAGIC, 0x0c, int),
				      arg));
	EXPECT_EQ(-ENOTTY, pcbt_ioctl(self->fd, _IOWR('x', 0x01,
						      struct pcb_topic_create),
				      arg));
	/* A tty ioctl on the device is not a pcb command either. */
	EXPECT_EQ(-ENOTTY, pcbt_ioctl(self->fd, TCGETS, arg));
}

TEST_F(topic, bad_argument_pointers_efault)
{
	static const unsigned long cmds[] = {
		PCB_IOC_TOPIC_CREATE, PCB_IOC_TOPIC_DELETE, PCB_IOC_TOPIC_INFO,
		PCB_IOC_TOPIC_LIST, PCB_IOC_TOPIC_OPEN, PCB_IOC_TOPIC_CLOSE,
		PCB_IOC_PUBLISH, PCB_IOC_RING_SETUP,
	};
	static void * const ptrs[] = {
		NULL, (void *)1, (void *)-4096L,
	};
	unsigned int i, j;

	for (i = 0; i < ARRAY_SIZE(cmds); i++)
		for (j = 0; j < ARRAY_SIZE(ptrs); j++) {
			EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, cmds[i], ptrs[j]))
				TH_LOG("cmd %#lx arg %p", cmds[i], ptrs[j]);
		}
}

/* A page holding @len bytes of @src, then made read-only. */
static void *read_only_copy(const void *src, size_t len)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memcpy(p, src, len);
	if (mprotect(p, page, PROT_READ)) {
		munmap(p, page);
		return NULL;
	}
	return p;
}

/*
 * An argument that can be read but not written back: the call fails with
 * EFAULT and, as for any failure, leaves nothing behind.
 */
TEST_F(topic, read_only_argument_efault_no_effect)
{
	long page = sysconf(_SC_PAGESIZE);
	struct pcb_topic_create tc;
	struct pcb_topic_open to = { .schema_id = 42 };
	void *ro;
	__u32 h;

	fill_create(&tc, self->name);
	ro = read_only_copy(&tc, sizeof(tc));
	ASSERT_NE(NULL, ro);
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_CREATE, ro));
	munmap(ro, page);
	EXPECT_EQ(-ENOENT, pcbt_nr_subs(self->fd, self->name));
	ASSERT_EQ(0, pcbt_create_raw(self->fd, &tc));

	pcbt_copy_name(to.name, self->name);
	ro = read_only_copy(&to, sizeof(to));
	ASSERT_NE(NULL, ro);
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, PCB_IOC_TOPIC_OPEN, ro));
	munmap(ro, page);
	/* No handle was left open by the failed call. */
	ASSERT_EQ(0, pcbt_open_topic(self->fd, self->name, 42, &h));
	EXPECT_EQ(0, pcbt_close_topic(self->fd, h));
	EXPECT_EQ(-EBADF, pcbt_close_topic(self->fd, h == 0 ? 1 : 0));
}

TEST_F(topic, create_enospc_at_max_topics)
{
	unsigned long long saved = pcbt_param("max_topics", 0);
	struct pcb_topic_info *all;
	char a[PCB_NAME_MAX], b[PCB_NAME_MAX];
	int n, calls;

	if (!pcbt_is_root() || !saved)
		SKIP(return, "needs root and the max_topics parameter");
	all = calloc(65536, sizeof(*all));
	ASSERT_NE(NULL, all);
	n = list_all(self->fd, 256, all, 65536, &calls);
	free(all);
	ASSERT_LE(0, n);
	if (pcbt_set_param("max_topics", n + 1))
		SKIP(return, "max_topics is not writable");

	pcbt_name(a, "lim");
	pcbt_name(b, "lim");
	EXPECT_EQ(0, pcbt_create(self->fd, a, 1, 8, 0600, NULL));
	EXPECT_EQ(-ENOSPC, pcbt_create(self->fd, b, 1, 8, 0600, NULL));
	EXPECT_EQ(0, pcbt_delete(self->fd, a));
	EXPECT_EQ(0, pcbt_create(self->fd, b, 1, 8, 0600, NULL));
	ASSERT_EQ(0, pcbt_set_param("max_topics", saved));
}

TEST_HARNESS_MAIN
