/* netd's endpoint stream (lib/epstream.h) into the name index. A snapshot
 * is collected aside and replaces the index whole at its end, so queries
 * never see half a snapshot; deltas apply at once. While netd is away,
 * dnsd answers from what it has. */
#include "dnsd.h"

#include "epstream.h"
#include "log.h"

static void st_begin(void *arg, uint64_t epoch)
{
	struct dnsd *d = arg;
	names_free(d->staging);
	d->staging = names_new();
	if (epoch != d->epoch)
		log_info("dnsd, netd epoch %llu: taking its snapshot", (unsigned long long)epoch);
	d->epoch = epoch;
}

static void st_record(void *arg, const Swarm__EndpointRecord *rec, bool deleted)
{
	struct dnsd *d = arg;
	struct names *into = d->staging ? d->staging : d->names;
	if (deleted)
		names_del(into, rec->endpoint_id);
	else
		names_put(into, rec);
}

static void st_end(void *arg)
{
	struct dnsd *d = arg;
	if (!d->staging)
		return;
	names_free(d->names);
	d->names = d->staging;
	d->staging = NULL;
	d->synced = true;
	log_info("dnsd, %zu endpoint(s) from netd", names_count(d->names));
}

static void st_lost(void *arg)
{
	struct dnsd *d = arg;
	names_free(d->staging);
	d->staging = NULL;
}

static const struct epstream_ops st_ops = {
	.begin = st_begin, .record = st_record, .end = st_end, .lost = st_lost,
};

void dnsd_stream_start(struct dnsd *d)
{
	d->stream = epstream_start(d->loop, d->run_dir, "dnsd", &st_ops, d);
}

void dnsd_stream_stop(struct dnsd *d)
{
	epstream_stop(d->stream);
	d->stream = NULL;
	names_free(d->staging);
	d->staging = NULL;
}
