/*
 * policy.c - a policy's lifetime: the embedded default (and the static deny-everything one
 * when memory is short), freeing, and the read-only accessors. Files are read by parse.c,
 * requests decided by match.c.
 */
#include <stdlib.h>
#include <string.h>

#include "policy_internal.h"

static struct policy static_deny_all = {
    .limits = {-1, -1, -1, -1},
    .is_static = true,
};

struct policy *
policy_default(uid_t daemon_uid)
{
	struct policy *p;
	struct rule *r;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return &static_deny_all;
	p->limits = (struct policy_limits){-1, -1, -1, -1};
	p->default_uid = daemon_uid;
	r = &p->default_rule;
	r->line = 0;
	r->allow = true;
	r->uids = &p->default_uid;
	r->n_uids = 1;
	r->ops = POLICY_ALL_OPS;
	r->all_options = true;
	r->handback = true; /* that peer could open the socket itself */
	r->max_handles = -1;
	r->max_connections = -1;
	p->rules = r;
	p->n_rules = 1;
	return p;
}

void
policy_free(struct policy *p)
{
	if (p == NULL || p->is_static)
		return;
	if (p->rules != &p->default_rule) {
		for (size_t i = 0; i < p->n_rules; i++)
			rule_free(&p->rules[i]);
		free(p->rules);
	}
	free(p->source);
	free(p);
}

const struct policy_limits *
policy_limits(const struct policy *p)
{
	return &p->limits;
}

size_t
policy_rule_count(const struct policy *p)
{
	return p->n_rules;
}

const char *
policy_source(const struct policy *p)
{
	return p->source != NULL ? p->source : "default";
}

void
rule_free(struct rule *r)
{
	size_t i;

	free(r->uids);
	free(r->gids);
	for (i = 0; i < r->n_exes; i++)
		free(r->exes[i]);
	free(r->exes);
	for (i = 0; i < r->n_cgroups; i++)
		free(r->cgroups[i]);
	free(r->cgroups);
	for (i = 0; i < r->n_principals; i++)
		free(r->principals[i]);
	free(r->principals);
	free(r->spkis);
	for (i = 0; i < r->n_claimed_exes; i++)
		free(r->claimed_exes[i]);
	free(r->claimed_exes);
	free(r->cidrs);
	for (i = 0; i < r->n_paths; i++)
		free(r->paths[i].path);
	free(r->paths);
	free(r->ports);
	for (i = 0; i < r->n_names; i++)
		free(r->names[i].text);
	free(r->names);
	free(r->options);
	free(r->reason);
	memset(r, 0, sizeof(*r));
}
