/*
 * faultfs: a FUSE pass-through file system over a backing directory whose requests can be
 * stalled (never answered until released), delayed or failed, per operation class and path
 * glob, switched at run time through a Unix control socket.
 *
 * Built on libfuse's low-level API on purpose: a stalled request is only its fuse_req_t kept in
 * a list, so stalling costs no thread and a stall of one path or operation class never starves
 * the others (with the high-level API every stalled call would hold a worker thread until
 * max_threads is reached and then stall everything). Delayed requests wait in a deadline queue
 * served by a few executor threads, never by sleeping in a loop thread.
 *
 * The daemon never touches the mount itself: it works on the backing directory through O_PATH
 * descriptors, and its control socket and log live outside the mount.
 *
 *   faultfs --backing DIR --mountpoint DIR --socket PATH [--ready-fd N] [--threads N] [--nice N] [--splice 0|1]
 *   faultfs --detach PATH     lazy unmount (umount2 MNT_DETACH, no path canonicalisation)
 *
 * Control protocol: one command per line, one reply line ("ok ..." or "err MESSAGE"):
 *   status                    ok {"pending":N,...}
 *   set[\tRULE]...            RULE = MODE OPS DELAY_MS ERRNO GLOB (GLOB may be empty = all paths)
 *                             MODE healthy|stall|delay|error, OPS a bit mask (1 read, 2 write,
 *                             4 fsync, 8 metadata); the first matching rule decides
 *   release [ERRNO]           answer every pending request, stalled or delayed (perform it, or fail it with ERRNO)
 *   unmount                   lazy unmount; the daemon exits once the last user is gone
 */
#define FUSE_USE_VERSION 312
#define _GNU_SOURCE
#include <fuse_lowlevel.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* The kernel only changes what it caches through us, so attributes and names can be cached;
 * set() drops cached attributes when a fault starts, so a stat of a faulty path reaches us. */
#define CACHE_TIMEOUT 1.0
#define MAX_WRITE (1u << 20)
#define EXECUTORS 4

enum { C_READ = 1, C_WRITE = 2, C_FSYNC = 4, C_META = 8, C_ALL = 15 };
enum { M_HEALTHY, M_STALL, M_DELAY, M_ERROR };
static const char *mode_names[] = {"healthy", "stall", "delay", "error"};

enum op {
	OP_LOOKUP, OP_GETATTR, OP_SETATTR, OP_READLINK, OP_MKNOD, OP_MKDIR, OP_UNLINK, OP_RMDIR,
	OP_SYMLINK, OP_RENAME, OP_LINK, OP_OPEN, OP_READ, OP_WRITE, OP_FSYNC,
	OP_OPENDIR, OP_READDIR, OP_FSYNCDIR, OP_STATFS, OP_CREATE, OP_FALLOCATE,
};

static void logmsg(const char *fmt, ...)
{
	char buf[1024];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	int n = (int)strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(buf + n, sizeof buf - n, ".%03ldZ faultfs[%d] ", ts.tv_nsec / 1000000, getpid());
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof buf - n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", buf);
}

/* ---------------------------------------------------------------- inodes */

/* One node per backing inode the kernel knows, found by (dev, ino); its fuse_ino_t is its address. */
struct node {
	struct node *next;
	dev_t dev;
	ino_t ino;
	int fd; /* O_PATH, follows the backing file through renames */
	uint64_t nlookup;
};

#define NBUCKETS 65536
static struct node *buckets[NBUCKETS];
static pthread_mutex_t nodes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct node root_node;
static char *backing_root;
static size_t backing_len;
static const char *mountpoint;
static int proc_fd = -1; /* /proc/self/fd, to reopen O_PATH descriptors with real flags */
static struct fuse_session *se;
/* Off: in A/B runs of 1 MiB sequential writes splicing was not faster (often slower) than copying. */
static int use_splice = 0;

static size_t bucket_of(dev_t dev, ino_t ino)
{
	return (size_t)((ino * 0x9E3779B97F4A7C15ull) ^ dev) & (NBUCKETS - 1);
}

static struct node *node_of(fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? &root_node : (struct node *)(uintptr_t)ino;
}

static fuse_ino_t ino_of(struct node *n)
{
	return n == &root_node ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

/* Registers (or finds) the node of fd; consumes fd. Returns NULL with errno on failure. */
static struct node *node_get(int fd, const struct stat *st)
{
	size_t b = bucket_of(st->st_dev, st->st_ino);
	pthread_mutex_lock(&nodes_lock);
	struct node *n = buckets[b];
	while (n && !(n->dev == st->st_dev && n->ino == st->st_ino)) n = n->next;
	if (n) {
		n->nlookup++;
		pthread_mutex_unlock(&nodes_lock);
		close(fd);
		return n;
	}
	if (st->st_dev == root_node.dev && st->st_ino == root_node.ino) {
		root_node.nlookup++;
		pthread_mutex_unlock(&nodes_lock);
		close(fd);
		return &root_node;
	}
	n = calloc(1, sizeof *n);
	if (!n) {
		pthread_mutex_unlock(&nodes_lock);
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	n->dev = st->st_dev;
	n->ino = st->st_ino;
	n->fd = fd;
	n->nlookup = 1;
	n->next = buckets[b];
	buckets[b] = n;
	pthread_mutex_unlock(&nodes_lock);
	return n;
}

static void node_forget(fuse_ino_t ino, uint64_t count)
{
	struct node *n = node_of(ino);
	if (n == &root_node) return;
	pthread_mutex_lock(&nodes_lock);
	n->nlookup = n->nlookup > count ? n->nlookup - count : 0;
	if (n->nlookup == 0) {
		struct node **pp = &buckets[bucket_of(n->dev, n->ino)];
		while (*pp && *pp != n) pp = &(*pp)->next;
		if (*pp) *pp = n->next;
		close(n->fd);
		free(n);
	}
	pthread_mutex_unlock(&nodes_lock);
}

/* Path of a node relative to the backing root ("" for the root), from the kernel's own view of
 * its O_PATH descriptor, so renames anywhere above it are reflected without bookkeeping. */
static void node_path(struct node *n, char *out, size_t size)
{
	out[0] = '\0';
	if (n == &root_node) return;
	char fdname[24], link[PATH_MAX];
	snprintf(fdname, sizeof fdname, "%d", n->fd);
	ssize_t len = readlinkat(proc_fd, fdname, link, sizeof link - 1);
	if (len < 0) return;
	link[len] = '\0';
	static const char deleted[] = " (deleted)";
	size_t dl = sizeof deleted - 1;
	if ((size_t)len > dl && strcmp(link + len - dl, deleted) == 0) link[len - dl] = '\0';
	if (strncmp(link, backing_root, backing_len) == 0 && link[backing_len] == '/')
		snprintf(out, size, "%s", link + backing_len + 1);
}

static void child_path(struct node *parent, const char *name, char *out, size_t size)
{
	char p[PATH_MAX];
	node_path(parent, p, sizeof p);
	if (p[0]) snprintf(out, size, "%s/%s", p, name);
	else snprintf(out, size, "%s", name);
}

/* ---------------------------------------------------------------- rules */

struct rule {
	int mode;
	unsigned ops;
	int delay_ms;
	int err;
	char *glob; /* NULL: every path */
};

struct ruleset {
	int n;
	int any_glob;
	int any_fault;
	struct rule r[];
};

static struct ruleset empty_rules;
static struct ruleset *rules = &empty_rules;
static pthread_rwlock_t rules_lock = PTHREAD_RWLOCK_INITIALIZER;

/* Glob: `*` and `?` never match '/', `**` matches anything, `[...]` a class, `\` escapes. */
static int glob_match(const char *p, const char *s)
{
	for (;;) {
		if (*p == '\0') return *s == '\0';
		if (p[0] == '*' && p[1] == '*') {
			p += 2;
			if (*p == '/' && glob_match(p + 1, s)) return 1;
			for (const char *t = s;; t++) {
				if (glob_match(p, t)) return 1;
				if (!*t) return 0;
			}
		}
		if (*p == '*') {
			p++;
			for (const char *t = s;; t++) {
				if (glob_match(p, t)) return 1;
				if (!*t || *t == '/') return 0;
			}
		}
		if (*s == '\0') return 0;
		if (*p == '?') {
			if (*s == '/') return 0;
		} else if (*p == '[') {
			const char *q = p + 1;
			int neg = (*q == '!' || *q == '^');
			if (neg) q++;
			int hit = 0, first = 1;
			while (*q && (first || *q != ']')) {
				first = 0;
				if (q[1] == '-' && q[2] && q[2] != ']') {
					if ((unsigned char)*s >= (unsigned char)q[0] && (unsigned char)*s <= (unsigned char)q[2]) hit = 1;
					q += 3;
				} else {
					if (*q == *s) hit = 1;
					q++;
				}
			}
			if (*q != ']') return 0; /* unbalanced: validated away at set() */
			if (*s == '/' || hit == neg) return 0;
			p = q;
		} else {
			if (*p == '\\' && p[1]) p++;
			if (*p != *s) return 0;
		}
		p++;
		s++;
	}
}

static const char *glob_invalid(const char *g)
{
	if (!*g) return NULL;
	if (*g == '/') return "must be relative to the mount root";
	for (const char *p = g; *p; p++) {
		if ((unsigned char)*p < 0x20) return "contains a control character";
		if (*p == '\\') {
			if (!p[1]) return "ends with a lone backslash";
			p++;
		} else if (*p == '[') {
			const char *q = p + 1;
			if (*q == '!' || *q == '^') q++;
			if (*q == ']') q++;
			while (*q && *q != ']') q++;
			if (!*q) return "has an unclosed [";
			p = q;
		}
	}
	return NULL;
}

/* A glob names a path or any directory above it: "zk1" covers "zk1/version-2/log.1". */
static int path_matches(const char *glob, const char *path)
{
	if (glob_match(glob, path)) return 1;
	char buf[PATH_MAX];
	size_t len = strlen(path);
	if (len >= sizeof buf) return 0;
	memcpy(buf, path, len + 1);
	for (size_t i = len; i > 0; i--) {
		if (buf[i - 1] == '/') {
			buf[i - 1] = '\0';
			if (glob_match(glob, buf)) return 1;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- calls */

/* One request with everything needed to perform it now or later. */
struct call {
	struct call *next;
	struct timespec due;
	enum op op;
	unsigned cls;
	fuse_req_t req;
	fuse_ino_t ino, ino2;
	const char *name, *name2;
	struct fuse_file_info fi;
	int has_fi;
	struct stat attr;
	int to_set;
	mode_t mode;
	dev_t rdev;
	off_t off, len;
	size_t size;
	int flags;
	struct fuse_bufvec *in_buf; /* a write answered at once */
	char *data;                 /* a parked write's copy */
	int owns;                   /* heap copy: names and data are ours */
};

enum { K_READ, K_WRITE, K_FSYNC, K_META, K_STALLED, K_DELAYED, K_ERRORED, K_RELEASED, K_N };
static const char *count_names[] = {"read", "write", "fsync", "metadata", "stalled", "delayed", "errored", "released"};
static uint64_t counts[K_N];
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond; /* on CLOCK_MONOTONIC, like the deadlines (see main) */
static struct call *stalled_head, **stalled_tail = &stalled_head;
static struct call *ready_head, **ready_tail = &ready_head;
static struct call *delay_head;
static long n_stalled, n_delayed, n_pending;

static void count(int k)
{
	__atomic_fetch_add(&counts[k], 1, __ATOMIC_RELAXED);
}

static int open_node(struct node *n, int flags)
{
	char fdname[24];
	snprintf(fdname, sizeof fdname, "%d", n->fd);
	return openat(proc_fd, fdname, (flags & ~O_NOFOLLOW) | O_CLOEXEC);
}

static int fill_entry(struct node *parent, const char *name, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof *e);
	int fd = openat(parent->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) return errno;
	if (fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		int err = errno;
		close(fd);
		return err;
	}
	struct node *n = node_get(fd, &e->attr);
	if (!n) return errno;
	e->ino = ino_of(n);
	e->attr_timeout = CACHE_TIMEOUT;
	e->entry_timeout = CACHE_TIMEOUT;
	return 0;
}

static void reply_entry(fuse_req_t req, struct node *parent, const char *name)
{
	struct fuse_entry_param e;
	int err = fill_entry(parent, name, &e);
	if (err) fuse_reply_err(req, err);
	else fuse_reply_entry(req, &e);
}

/* New files belong to the caller, not to the daemon. */
static void own(fuse_req_t req, struct node *parent, const char *name)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	if (ctx->uid != geteuid() || ctx->gid != getegid())
		if (fchownat(parent->fd, name, ctx->uid, ctx->gid, AT_SYMLINK_NOFOLLOW) < 0) { /* best effort */ }
}

struct dirp {
	DIR *dp;
	struct dirent *entry;
	off_t offset;
};

static void do_getattr(fuse_req_t req, struct node *n)
{
	struct stat st;
	if (fstatat(n->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) fuse_reply_err(req, errno);
	else fuse_reply_attr(req, &st, CACHE_TIMEOUT);
}

static void do_setattr(struct call *c)
{
	struct node *n = node_of(c->ino);
	char fdname[24];
	snprintf(fdname, sizeof fdname, "%d", n->fd);
	int fd = c->has_fi ? (int)c->fi.fh : -1;
	int res = 0;
	if (c->to_set & FUSE_SET_ATTR_MODE)
		res = fd >= 0 ? fchmod(fd, c->attr.st_mode) : fchmodat(proc_fd, fdname, c->attr.st_mode, 0);
	if (res == 0 && (c->to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
		uid_t uid = (c->to_set & FUSE_SET_ATTR_UID) ? c->attr.st_uid : (uid_t)-1;
		gid_t gid = (c->to_set & FUSE_SET_ATTR_GID) ? c->attr.st_gid : (gid_t)-1;
		res = fchownat(n->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	}
	if (res == 0 && (c->to_set & FUSE_SET_ATTR_SIZE)) {
		if (fd >= 0) res = ftruncate(fd, c->attr.st_size);
		else {
			int wfd = open_node(n, O_WRONLY);
			if (wfd < 0) res = -1;
			else {
				res = ftruncate(wfd, c->attr.st_size);
				int e = errno;
				close(wfd);
				errno = e;
			}
		}
	}
	if (res == 0 && (c->to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
		struct timespec tv[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
		if (c->to_set & FUSE_SET_ATTR_ATIME_NOW) tv[0].tv_nsec = UTIME_NOW;
		else if (c->to_set & FUSE_SET_ATTR_ATIME) tv[0] = c->attr.st_atim;
		if (c->to_set & FUSE_SET_ATTR_MTIME_NOW) tv[1].tv_nsec = UTIME_NOW;
		else if (c->to_set & FUSE_SET_ATTR_MTIME) tv[1] = c->attr.st_mtim;
		if (fd >= 0) res = futimens(fd, tv);
		else {
			char path[64];
			snprintf(path, sizeof path, "/proc/self/fd/%d", n->fd);
			/* a symlink's O_PATH fd: utimensat on the /proc link with NOFOLLOW changes the link itself */
			res = utimensat(AT_FDCWD, path, tv, 0);
		}
	}
	if (res < 0) fuse_reply_err(c->req, errno);
	else do_getattr(c->req, n);
}

static void do_readdir(struct call *c)
{
	struct dirp *d = (struct dirp *)(uintptr_t)c->fi.fh;
	char *buf = malloc(c->size);
	if (!buf) {
		fuse_reply_err(c->req, ENOMEM);
		return;
	}
	if (c->off != d->offset) {
		seekdir(d->dp, c->off);
		d->entry = NULL;
		d->offset = c->off;
	}
	size_t used = 0;
	int err = 0;
	for (;;) {
		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry) {
				err = errno;
				break;
			}
		}
		struct stat st = {.st_ino = d->entry->d_ino, .st_mode = (mode_t)d->entry->d_type << 12};
		size_t need = fuse_add_direntry(c->req, buf + used, c->size - used, d->entry->d_name, &st, d->entry->d_off);
		if (need > c->size - used) break;
		used += need;
		d->offset = d->entry->d_off;
		d->entry = NULL;
	}
	if (err && used == 0) fuse_reply_err(c->req, err);
	else fuse_reply_buf(c->req, buf, used);
	free(buf);
}

/* Performs a call against the backing directory and answers it. */
static void run(struct call *c)
{
	fuse_req_t req = c->req;
	struct node *n = node_of(c->ino);
	switch (c->op) {
	case OP_LOOKUP:
		reply_entry(req, n, c->name);
		return;
	case OP_GETATTR:
		do_getattr(req, n);
		return;
	case OP_SETATTR:
		do_setattr(c);
		return;
	case OP_READLINK: {
		char buf[PATH_MAX + 1];
		ssize_t len = readlinkat(n->fd, "", buf, sizeof buf - 1);
		if (len < 0) fuse_reply_err(req, errno);
		else {
			buf[len] = '\0';
			fuse_reply_readlink(req, buf);
		}
		return;
	}
	case OP_MKNOD:
	case OP_MKDIR:
	case OP_SYMLINK: {
		int res;
		if (c->op == OP_MKDIR) res = mkdirat(n->fd, c->name, c->mode);
		else if (c->op == OP_SYMLINK) res = symlinkat(c->name2, n->fd, c->name);
		else res = mknodat(n->fd, c->name, c->mode, c->rdev);
		if (res < 0) {
			fuse_reply_err(req, errno);
			return;
		}
		own(req, n, c->name);
		reply_entry(req, n, c->name);
		return;
	}
	case OP_UNLINK:
	case OP_RMDIR:
		fuse_reply_err(req, unlinkat(n->fd, c->name, c->op == OP_RMDIR ? AT_REMOVEDIR : 0) < 0 ? errno : 0);
		return;
	case OP_RENAME:
		fuse_reply_err(req, renameat2(n->fd, c->name, node_of(c->ino2)->fd, c->name2, (unsigned)c->flags) < 0 ? errno : 0);
		return;
	case OP_LINK: {
		struct node *parent = node_of(c->ino2);
		if (linkat(n->fd, "", parent->fd, c->name2, AT_EMPTY_PATH) < 0) fuse_reply_err(req, errno);
		else reply_entry(req, parent, c->name2);
		return;
	}
	case OP_OPEN: {
		int fd = open_node(n, c->fi.flags);
		if (fd < 0) {
			fuse_reply_err(req, errno);
			return;
		}
		c->fi.fh = (uint64_t)fd;
		if (fuse_reply_open(req, &c->fi) == -ENOENT) close(fd); /* the caller is gone */
		return;
	}
	case OP_CREATE: {
		int fd = openat(n->fd, c->name, (c->fi.flags | O_CREAT) & ~O_NOFOLLOW, c->mode);
		if (fd < 0) {
			fuse_reply_err(req, errno);
			return;
		}
		own(req, n, c->name);
		struct fuse_entry_param e;
		int err = fill_entry(n, c->name, &e);
		if (err) {
			close(fd);
			fuse_reply_err(req, err);
			return;
		}
		c->fi.fh = (uint64_t)fd;
		if (fuse_reply_create(req, &e, &c->fi) == -ENOENT) {
			close(fd);
			node_forget(e.ino, 1);
		}
		return;
	}
	case OP_OPENDIR: {
		struct dirp *d = calloc(1, sizeof *d);
		int fd = open_node(n, O_RDONLY | O_DIRECTORY);
		if (!d || fd < 0 || !(d->dp = fdopendir(fd))) {
			int err = d ? errno : ENOMEM;
			if (fd >= 0) close(fd);
			free(d);
			fuse_reply_err(req, err ? err : EIO);
			return;
		}
		c->fi.fh = (uint64_t)(uintptr_t)d;
		if (fuse_reply_open(req, &c->fi) == -ENOENT) {
			closedir(d->dp);
			free(d);
		}
		return;
	}
	case OP_READDIR:
		do_readdir(c);
		return;
	case OP_READ: {
		struct fuse_bufvec buf = FUSE_BUFVEC_INIT(c->size);
		buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		buf.buf[0].fd = (int)c->fi.fh;
		buf.buf[0].pos = c->off;
		fuse_reply_data(req, &buf, 0);
		return;
	}
	case OP_WRITE: {
		ssize_t res;
		if (c->data) res = pwrite((int)c->fi.fh, c->data, c->size, c->off);
		else {
			struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(c->in_buf));
			out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
			out.buf[0].fd = (int)c->fi.fh;
			out.buf[0].pos = c->off;
			res = fuse_buf_copy(&out, c->in_buf, 0);
			if (res < 0) errno = (int)-res;
		}
		if (res < 0) fuse_reply_err(req, errno);
		else fuse_reply_write(req, (size_t)res);
		return;
	}
	case OP_FSYNC:
	case OP_FSYNCDIR: {
		int fd = c->op == OP_FSYNC ? (int)c->fi.fh : dirfd(((struct dirp *)(uintptr_t)c->fi.fh)->dp);
		fuse_reply_err(req, (c->flags ? fdatasync(fd) : fsync(fd)) < 0 ? errno : 0);
		return;
	}
	case OP_STATFS: {
		struct statvfs sv;
		if (fstatvfs(n->fd, &sv) < 0) fuse_reply_err(req, errno);
		else fuse_reply_statfs(req, &sv);
		return;
	}
	case OP_FALLOCATE: {
		int err = fallocate((int)c->fi.fh, c->flags, c->off, c->len) < 0 ? errno : 0;
		fuse_reply_err(req, err);
		return;
	}
	}
	fuse_reply_err(req, ENOSYS);
}

static struct call *park_copy(const struct call *c)
{
	struct call *h = malloc(sizeof *h);
	if (!h) return NULL;
	*h = *c;
	h->owns = 1;
	h->next = NULL;
	h->name = c->name ? strdup(c->name) : NULL;
	h->name2 = c->name2 ? strdup(c->name2) : NULL;
	h->data = NULL;
	if (c->op == OP_WRITE) {
		size_t size = fuse_buf_size(c->in_buf);
		h->data = malloc(size ? size : 1);
		struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
		dst.buf[0].mem = h->data;
		ssize_t got = h->data ? fuse_buf_copy(&dst, c->in_buf, 0) : -ENOMEM;
		if (got < 0) {
			free(h->data);
			free((char *)h->name);
			free((char *)h->name2);
			free(h);
			return NULL;
		}
		h->size = (size_t)got;
		h->in_buf = NULL;
	}
	return h;
}

static void free_call(struct call *h)
{
	free((char *)h->name);
	free((char *)h->name2);
	free(h->data);
	free(h);
}

/* Answered parked requests: performed by the executors, counted down here. */
static void parked_done(void)
{
	pthread_mutex_lock(&q_lock);
	n_pending--;
	pthread_mutex_unlock(&q_lock);
}

static void rule_paths(struct call *c, char *p1, char *p2, size_t size)
{
	p1[0] = p2[0] = '\0';
	struct node *n = node_of(c->ino);
	switch (c->op) {
	case OP_LOOKUP: case OP_MKNOD: case OP_MKDIR: case OP_UNLINK: case OP_RMDIR:
	case OP_SYMLINK: case OP_CREATE:
		child_path(n, c->name, p1, size);
		return;
	case OP_RENAME:
		child_path(n, c->name, p1, size);
		child_path(node_of(c->ino2), c->name2, p2, size);
		return;
	case OP_LINK:
		node_path(n, p1, size);
		child_path(node_of(c->ino2), c->name2, p2, size);
		return;
	default:
		node_path(n, p1, size);
	}
}

static void dispatch(struct call *c)
{
	count(c->cls == C_READ ? K_READ : c->cls == C_WRITE ? K_WRITE : c->cls == C_FSYNC ? K_FSYNC : K_META);
	struct rule hit = {.mode = M_HEALTHY};
	pthread_rwlock_rdlock(&rules_lock);
	struct ruleset *rs = rules;
	if (rs->any_fault) {
		char p1[PATH_MAX], p2[PATH_MAX];
		int have_paths = 0;
		for (int i = 0; i < rs->n; i++) {
			struct rule *r = &rs->r[i];
			if (!(r->ops & c->cls)) continue;
			if (r->glob) {
				if (!have_paths) {
					rule_paths(c, p1, p2, sizeof p1);
					have_paths = 1;
				}
				if (!path_matches(r->glob, p1) && !(p2[0] && path_matches(r->glob, p2))) continue;
			}
			hit = *r;
			break;
		}
	}
	pthread_rwlock_unlock(&rules_lock);
	if (hit.mode == M_HEALTHY) {
		run(c);
		return;
	}
	if (hit.mode == M_ERROR) {
		count(K_ERRORED);
		fuse_reply_err(c->req, hit.err);
		return;
	}
	struct call *h = park_copy(c);
	if (!h) {
		fuse_reply_err(c->req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&q_lock);
	n_pending++;
	if (hit.mode == M_STALL) {
		count(K_STALLED);
		n_stalled++;
		*stalled_tail = h;
		stalled_tail = &h->next;
	} else {
		count(K_DELAYED);
		n_delayed++;
		clock_gettime(CLOCK_MONOTONIC, &h->due);
		h->due.tv_sec += hit.delay_ms / 1000;
		h->due.tv_nsec += (long)(hit.delay_ms % 1000) * 1000000L;
		if (h->due.tv_nsec >= 1000000000L) {
			h->due.tv_sec++;
			h->due.tv_nsec -= 1000000000L;
		}
		/* Equal delays arrive in due order: walk from the head only past earlier deadlines. */
		struct call **pp = &delay_head;
		while (*pp && ((*pp)->due.tv_sec < h->due.tv_sec ||
		               ((*pp)->due.tv_sec == h->due.tv_sec && (*pp)->due.tv_nsec <= h->due.tv_nsec)))
			pp = &(*pp)->next;
		h->next = *pp;
		*pp = h;
		pthread_cond_broadcast(&q_cond);
	}
	pthread_mutex_unlock(&q_lock);
}

static void *executor(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&q_lock);
	for (;;) {
		struct call *c = NULL;
		if (ready_head) {
			c = ready_head;
			ready_head = c->next;
			if (!ready_head) ready_tail = &ready_head;
		} else if (delay_head) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (delay_head->due.tv_sec < now.tv_sec ||
			    (delay_head->due.tv_sec == now.tv_sec && delay_head->due.tv_nsec <= now.tv_nsec)) {
				c = delay_head;
				delay_head = c->next;
				n_delayed--;
			} else {
				pthread_cond_timedwait(&q_cond, &q_lock, &delay_head->due);
				continue;
			}
		} else {
			pthread_cond_wait(&q_cond, &q_lock);
			continue;
		}
		pthread_mutex_unlock(&q_lock);
		run(c);
		free_call(c);
		pthread_mutex_lock(&q_lock);
		n_pending--;
	}
	return NULL;
}

/* Hands every pending request (stalled or still waiting out a delay) to the executors (err 0)
 * or fails it; returns how many. */
static long release_stalled(int err)
{
	pthread_mutex_lock(&q_lock);
	long n = n_stalled + n_delayed;
	*stalled_tail = delay_head;
	delay_head = NULL;
	struct call *list = stalled_head;
	stalled_head = NULL;
	stalled_tail = &stalled_head;
	n_stalled = 0;
	n_delayed = 0;
	if (!err && list) {
		*ready_tail = list;
		while (*ready_tail) ready_tail = &(*ready_tail)->next;
		pthread_cond_broadcast(&q_cond);
	}
	pthread_mutex_unlock(&q_lock);
	__atomic_fetch_add(&counts[K_RELEASED], (uint64_t)n, __ATOMIC_RELAXED);
	if (err) {
		while (list) {
			struct call *next = list->next;
			fuse_reply_err(list->req, err);
			free_call(list);
			parked_done();
			list = next;
		}
	}
	return n;
}

/* ---------------------------------------------------------------- FUSE operations */

#define CALL(OP, CLS, ...) struct call c = {.op = (OP), .cls = (CLS), .req = req, __VA_ARGS__}; dispatch(&c)

static void ll_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE; /* every write must reach us: a stall must stall it */
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
	conn->want &= ~(FUSE_CAP_FLOCK_LOCKS | FUSE_CAP_POSIX_LOCKS); /* the kernel keeps locks locally */
	if (use_splice) conn->want |= conn->capable & (FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
	conn->max_write = MAX_WRITE;
	conn->max_readahead = conn->max_readahead < MAX_WRITE ? conn->max_readahead : MAX_WRITE;
	/* Stalled read-ahead counts against max_background: keep it far from a limit, so a
	 * stalled path cannot block background requests of healthy ones. */
	conn->max_background = 4096;
	conn->congestion_threshold = 3072;
	conn->time_gran = 1;
	logmsg("init: protocol %u.%u, max_write %u, capable 0x%x, want 0x%x", conn->proto_major, conn->proto_minor,
	       conn->max_write, conn->capable, conn->want);
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	CALL(OP_LOOKUP, C_META, .ino = parent, .name = name);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	node_forget(ino, nlookup);
	fuse_reply_none(req);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++) node_forget(forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	CALL(OP_GETATTR, C_META, .ino = ino);
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	/* truncation changes data: it is a write */
	CALL(OP_SETATTR, (to_set & FUSE_SET_ATTR_SIZE) ? C_WRITE : C_META, .ino = ino, .attr = *attr, .to_set = to_set,
	     .has_fi = fi != NULL, .fi = fi ? *fi : (struct fuse_file_info){0});
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino)
{
	CALL(OP_READLINK, C_META, .ino = ino);
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	CALL(OP_MKNOD, C_META, .ino = parent, .name = name, .mode = mode, .rdev = rdev);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	CALL(OP_MKDIR, C_META, .ino = parent, .name = name, .mode = mode);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	CALL(OP_UNLINK, C_META, .ino = parent, .name = name);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	CALL(OP_RMDIR, C_META, .ino = parent, .name = name);
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	CALL(OP_SYMLINK, C_META, .ino = parent, .name = name, .name2 = link);
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname,
                      unsigned int flags)
{
	CALL(OP_RENAME, C_META, .ino = parent, .name = name, .ino2 = newparent, .name2 = newname, .flags = (int)flags);
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	CALL(OP_LINK, C_META, .ino = ino, .ino2 = newparent, .name2 = newname);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	CALL(OP_OPEN, C_META, .ino = ino, .fi = *fi, .has_fi = 1);
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	CALL(OP_CREATE, C_META, .ino = parent, .name = name, .mode = mode, .fi = *fi, .has_fi = 1);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	CALL(OP_READ, C_READ, .ino = ino, .size = size, .off = off, .fi = *fi, .has_fi = 1);
}

static void ll_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in_buf, off_t off, struct fuse_file_info *fi)
{
	CALL(OP_WRITE, C_WRITE, .ino = ino, .in_buf = in_buf, .off = off, .fi = *fi, .has_fi = 1);
}

/* close() never waits for a disk (nothing is cached here to write back), and a stalled flush
 * would catch a process again on its way out after release: never faulted. */
static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	close((int)fi->fh);
	fuse_reply_err(req, 0);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	CALL(OP_FSYNC, C_FSYNC, .ino = ino, .flags = datasync, .fi = *fi, .has_fi = 1);
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	CALL(OP_OPENDIR, C_META, .ino = ino, .fi = *fi, .has_fi = 1);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	CALL(OP_READDIR, C_META, .ino = ino, .size = size, .off = off, .fi = *fi, .has_fi = 1);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct dirp *d = (struct dirp *)(uintptr_t)fi->fh;
	closedir(d->dp);
	free(d);
	fuse_reply_err(req, 0);
}

static void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	CALL(OP_FSYNCDIR, C_FSYNC, .ino = ino, .flags = datasync, .fi = *fi, .has_fi = 1);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	CALL(OP_STATFS, C_META, .ino = ino);
}

static void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	CALL(OP_FALLOCATE, C_WRITE, .ino = ino, .flags = mode, .off = off, .len = len, .fi = *fi, .has_fi = 1);
}

static const struct fuse_lowlevel_ops ops = {
	.init = ll_init,
	.lookup = ll_lookup,
	.forget = ll_forget,
	.forget_multi = ll_forget_multi,
	.getattr = ll_getattr,
	.setattr = ll_setattr,
	.readlink = ll_readlink,
	.mknod = ll_mknod,
	.mkdir = ll_mkdir,
	.unlink = ll_unlink,
	.rmdir = ll_rmdir,
	.symlink = ll_symlink,
	.rename = ll_rename,
	.link = ll_link,
	.open = ll_open,
	.create = ll_create,
	.read = ll_read,
	.write_buf = ll_write_buf,
	.flush = ll_flush,
	.release = ll_release,
	.fsync = ll_fsync,
	.opendir = ll_opendir,
	.readdir = ll_readdir,
	.releasedir = ll_releasedir,
	.fsyncdir = ll_fsyncdir,
	.statfs = ll_statfs,
	.fallocate = ll_fallocate,
};

/* ---------------------------------------------------------------- control socket */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
		else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
		else fputc(ch, f);
	}
	fputc('"', f);
}

static char *status_json(void)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f) return NULL;
	pthread_mutex_lock(&q_lock);
	long pending = n_pending, stalled = n_stalled, delayed = n_delayed;
	pthread_mutex_unlock(&q_lock);
	fprintf(f, "{\"pending\":%ld,\"stalled\":%ld,\"delayed\":%ld,\"counts\":{", pending, stalled, delayed);
	for (int k = 0; k < K_N; k++)
		fprintf(f, "%s\"%s\":%" PRIu64, k ? "," : "", count_names[k], __atomic_load_n(&counts[k], __ATOMIC_RELAXED));
	fprintf(f, "},\"rules\":[");
	pthread_rwlock_rdlock(&rules_lock);
	for (int i = 0; i < rules->n; i++) {
		struct rule *r = &rules->r[i];
		fprintf(f, "%s{\"mode\":\"%s\",\"ops\":%u,\"delayMs\":%d,\"errno\":%d,\"path\":", i ? "," : "", mode_names[r->mode],
		        r->ops, r->delay_ms, r->err);
		json_str(f, r->glob ? r->glob : "");
		fputc('}', f);
	}
	pthread_rwlock_unlock(&rules_lock);
	fprintf(f, "]}");
	fclose(f);
	return out;
}

/* Parses "set\tRULE\tRULE..."; on error returns a message naming the rule and field. */
static const char *parse_rules(char *line, struct ruleset **out, char *msg, size_t msgsize)
{
	int n = 0;
	for (char *p = line; *p; p++) if (*p == '\t') n++;
	struct ruleset *rs = calloc(1, sizeof *rs + (size_t)n * sizeof(struct rule));
	if (!rs) return "out of memory";
	char *save = NULL;
	strtok_r(line, "\t", &save); /* "set" */
	char *tok;
	while ((tok = strtok_r(NULL, "\t", &save))) {
		struct rule *r = &rs->r[rs->n];
		char mode[16];
		int used = 0;
		if (sscanf(tok, "%15s %u %d %d %n", mode, &r->ops, &r->delay_ms, &r->err, &used) < 4) {
			snprintf(msg, msgsize, "rule %d: expected MODE OPS DELAY_MS ERRNO GLOB, got '%s'", rs->n, tok);
			goto fail;
		}
		r->mode = -1;
		for (int m = 0; m < 4; m++) if (strcmp(mode, mode_names[m]) == 0) r->mode = m;
		if (r->mode < 0) {
			snprintf(msg, msgsize, "rule %d: mode must be healthy, stall, delay or error, got '%s'", rs->n, mode);
			goto fail;
		}
		if (r->ops == 0 || (r->ops & ~(unsigned)C_ALL)) {
			snprintf(msg, msgsize, "rule %d: ops must be a mask of 1 read, 2 write, 4 fsync, 8 metadata, got %u", rs->n, r->ops);
			goto fail;
		}
		if (r->delay_ms < 0 || (r->mode == M_DELAY && r->delay_ms == 0)) {
			snprintf(msg, msgsize, "rule %d: delay must be a positive number of ms, got %d", rs->n, r->delay_ms);
			goto fail;
		}
		if (r->mode == M_ERROR && (r->err <= 0 || r->err > 4095)) {
			snprintf(msg, msgsize, "rule %d: errno must be a positive errno number, got %d", rs->n, r->err);
			goto fail;
		}
		const char *glob = tok + used;
		const char *why = glob_invalid(glob);
		if (why) {
			snprintf(msg, msgsize, "rule %d: path glob '%s' %s", rs->n, glob, why);
			goto fail;
		}
		r->glob = *glob ? strdup(glob) : NULL;
		if (r->glob) rs->any_glob = 1;
		if (r->mode != M_HEALTHY) rs->any_fault = 1;
		rs->n++;
	}
	*out = rs;
	return NULL;
fail:
	for (int i = 0; i < rs->n; i++) free(rs->r[i].glob);
	free(rs);
	return msg;
}

/* A fault that starts must reach the kernel's cached attributes too, or a stat would not see it. */
static void drop_cached_attrs(void)
{
	size_t cap = 1024, n = 0;
	fuse_ino_t *inos = malloc(cap * sizeof *inos);
	if (!inos) return;
	pthread_mutex_lock(&nodes_lock);
	inos[n++] = FUSE_ROOT_ID;
	for (size_t b = 0; b < NBUCKETS; b++) {
		for (struct node *x = buckets[b]; x; x = x->next) {
			if (n == cap) {
				fuse_ino_t *more = realloc(inos, cap * 2 * sizeof *inos);
				if (!more) break;
				inos = more;
				cap *= 2;
			}
			inos[n++] = ino_of(x);
		}
	}
	pthread_mutex_unlock(&nodes_lock);
	/* Off < 0: attributes only, which takes no inode lock, so a stalled request cannot block this. */
	for (size_t i = 0; i < n; i++) fuse_lowlevel_notify_inval_inode(se, inos[i], -1, 0);
	free(inos);
}

static void detach_and_exit(void)
{
	logmsg("unmount: lazy unmount of %s", mountpoint);
	if (umount2(mountpoint, MNT_DETACH) < 0) logmsg("umount2(%s): %s", mountpoint, strerror(errno));
	fuse_session_exit(se);
}

static void handle_line(int fd, char *line)
{
	char msg[PATH_MAX + 256];
	char *reply = NULL;
	if (strcmp(line, "status") == 0) {
		char *json = status_json();
		if (json && asprintf(&reply, "ok %s\n", json) < 0) reply = NULL;
		free(json);
	} else if (strncmp(line, "set", 3) == 0 && (line[3] == '\0' || line[3] == '\t')) {
		struct ruleset *rs = NULL;
		const char *err = parse_rules(line, &rs, msg, sizeof msg);
		if (err) {
			if (asprintf(&reply, "err %s\n", err) < 0) reply = NULL;
		} else {
			pthread_rwlock_wrlock(&rules_lock);
			struct ruleset *old = rules;
			rules = rs;
			pthread_rwlock_unlock(&rules_lock);
			/* Readers copy the rule they hit before unlocking, so the old set can go now. */
			if (old != &empty_rules) {
				for (int i = 0; i < old->n; i++) free(old->r[i].glob);
				free(old);
			}
			if (rs->any_fault) drop_cached_attrs();
			logmsg("set: %d rule(s)", rs->n);
			reply = strdup("ok\n");
		}
	} else if (strncmp(line, "release", 7) == 0 && (line[7] == '\0' || line[7] == ' ')) {
		int err = line[7] ? atoi(line + 8) : 0;
		if (err < 0 || err > 4095) {
			reply = strdup("err release: errno must be a positive errno number\n");
		} else {
			long n = release_stalled(err);
			logmsg("release: %ld request(s)%s", n, err ? " failed" : "");
			if (asprintf(&reply, "ok %ld\n", n) < 0) reply = NULL;
		}
	} else if (strcmp(line, "unmount") == 0) {
		reply = strdup("ok\n");
		if (reply && write(fd, reply, strlen(reply)) < 0) { /* the client left */ }
		free(reply);
		detach_and_exit();
		return;
	} else {
		snprintf(msg, sizeof msg, "err unknown command '%.64s' (expected status, set, release or unmount)\n", line);
		reply = strdup(msg);
	}
	if (!reply) reply = strdup("err out of memory\n");
	if (reply && write(fd, reply, strlen(reply)) < 0) { /* the client left */ }
	free(reply);
}

static void *client_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	while (buf) {
		ssize_t got = read(fd, buf + len, cap - len - 1);
		if (got <= 0) break;
		len += (size_t)got;
		buf[len] = '\0';
		char *nl;
		while ((nl = memchr(buf, '\n', len))) {
			*nl = '\0';
			handle_line(fd, buf);
			size_t rest = len - (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, rest);
			len = rest;
		}
		if (len == cap - 1) {
			char *more = realloc(buf, cap * 2);
			if (!more) break;
			buf = more;
			cap *= 2;
		}
	}
	free(buf);
	close(fd);
	return NULL;
}

static void *accept_thread(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED) continue;
			logmsg("accept: %s", strerror(errno));
			return NULL;
		}
		pthread_t t;
		if (pthread_create(&t, NULL, client_thread, (void *)(intptr_t)fd) != 0) close(fd);
		else pthread_detach(t);
	}
}

static void *signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig;
	if (sigwait(set, &sig) == 0) {
		logmsg("signal %d", sig);
		detach_and_exit();
	}
	return NULL;
}

/* ---------------------------------------------------------------- main */

static void check_request_timeouts(void)
{
	static const char *files[] = {"/proc/sys/fs/fuse/default_request_timeout", "/proc/sys/fs/fuse/max_request_timeout"};
	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "r");
		if (!f) continue;
		long v = 0;
		if (fscanf(f, "%ld", &v) == 1 && v != 0)
			logmsg("WARNING: %s is %ld: the kernel fails a stalled request after that many seconds, so a stall is not indefinite",
			       files[i], v);
		fclose(f);
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: faultfs --backing DIR --mountpoint DIR --socket PATH [--ready-fd N] [--threads N] [--nice N] [--splice 0|1]\n"
	                "       faultfs --detach PATH\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *backing = NULL, *sock_path = NULL;
	int ready_fd = -1, threads = 16, nice_value = -10;
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc) return usage();
		if (strcmp(argv[i], "--detach") == 0) {
			if (umount2(argv[i + 1], MNT_DETACH) < 0) {
				fprintf(stderr, "faultfs: umount2(%s): %s\n", argv[i + 1], strerror(errno));
				return errno == EINVAL || errno == ENOENT ? 1 : 3;
			}
			return 0;
		}
		if (strcmp(argv[i], "--backing") == 0) backing = argv[++i];
		else if (strcmp(argv[i], "--mountpoint") == 0) mountpoint = argv[++i];
		else if (strcmp(argv[i], "--socket") == 0) sock_path = argv[++i];
		else if (strcmp(argv[i], "--ready-fd") == 0) ready_fd = atoi(argv[++i]);
		else if (strcmp(argv[i], "--threads") == 0) threads = atoi(argv[++i]);
		else if (strcmp(argv[i], "--nice") == 0) nice_value = atoi(argv[++i]);
		else if (strcmp(argv[i], "--splice") == 0) use_splice = atoi(argv[++i]);
		else return usage();
	}
	if (!backing || !mountpoint || !sock_path || threads < 1) return usage();

	backing_root = realpath(backing, NULL);
	if (!backing_root) {
		logmsg("backing directory %s: %s", backing, strerror(errno));
		return 2;
	}
	backing_len = strlen(backing_root);
	root_node.fd = open(backing_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (root_node.fd < 0 || fstat(root_node.fd, &st) < 0) {
		logmsg("backing directory %s: %s", backing_root, strerror(errno));
		return 2;
	}
	root_node.dev = st.st_dev;
	root_node.ino = st.st_ino;
	root_node.nlookup = 2;
	proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (proc_fd < 0) {
		logmsg("/proc/self/fd: %s", strerror(errno));
		return 3;
	}
	check_request_timeouts();
	/* A disk answers whatever the CPUs are doing: on a busy machine a request would otherwise wait
	 * for this daemon to be scheduled, a delay no real disk adds. Threads inherit it. */
	if (setpriority(PRIO_PROCESS, 0, nice_value) < 0) logmsg("setpriority(%d): %s", nice_value, strerror(errno));

	/* Signals go to one thread that unmounts; every other thread has them blocked. */
	static sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(sock_path) >= sizeof addr.sun_path) {
		logmsg("control socket path %s is longer than %zu bytes", sock_path, sizeof addr.sun_path - 1);
		return 2;
	}
	strcpy(addr.sun_path, sock_path);
	unlink(sock_path);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 16) < 0) {
		logmsg("control socket %s: %s", sock_path, strerror(errno));
		return 3;
	}
	chmod(sock_path, 0600);

	char fsname[64];
	snprintf(fsname, sizeof fsname, "-ofsname=faultfs.%d", getpid());
	char *fargv[] = {argv[0], fsname, "-osubtype=faultfs", "-oallow_other", "-odefault_permissions", NULL};
	struct fuse_args args = FUSE_ARGS_INIT(5, fargv);
	se = fuse_session_new(&args, &ops, sizeof ops, NULL);
	if (!se) {
		logmsg("fuse_session_new failed");
		return 3;
	}
	if (fuse_session_mount(se, mountpoint) != 0) {
		logmsg("mount of %s failed", mountpoint);
		unlink(sock_path);
		return 3;
	}
	logmsg("mounted %s over %s, control socket %s", mountpoint, backing_root, sock_path);

	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q_cond, &ca);
	pthread_t t;
	for (int i = 0; i < EXECUTORS; i++) pthread_create(&t, NULL, executor, NULL);
	pthread_create(&t, NULL, accept_thread, (void *)(intptr_t)lfd);
	pthread_create(&t, NULL, signal_thread, &sigs);

	if (ready_fd >= 0) {
		char line[64];
		int n = snprintf(line, sizeof line, "ready %d\n", getpid());
		if (write(ready_fd, line, (size_t)n) < 0) { /* the parent left: serve anyway */ }
		close(ready_fd);
	}

	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(cfg, (unsigned)threads);
	fuse_loop_cfg_set_idle_threads(cfg, (unsigned)threads); /* no thread churn on bursts */
	fuse_loop_cfg_set_clone_fd(cfg, 1);
	int res = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	logmsg("loop ended (%d)", res);
	unlink(sock_path);
	/* Parked requests die with the /dev/fuse descriptor at exit: the kernel fails them. */
	_exit(res == 0 ? 0 : 1);
}
