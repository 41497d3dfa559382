/* SPDX-License-Identifier: MIT */
/* ops_fe: the metrics of the client-facing front ends (shoal, shoal-gateway). */
#ifndef SHOAL_OPS_FE_H
#define SHOAL_OPS_FE_H

#include "frontend.h"
#include "ops.h"

/* Requests by protocol, action and result; errors by reason; peers handed out; HTTP connections;
 * access-list refusals. Counters are the workers' own, summed here (published once a second, so
 * a scrape lags the requests by up to a second). */
void ops_fe_metrics(metrics_t *m, const frontend_t *fe);

/* For /healthz: false with a reason if a front-end worker has not gone round its loop in
 * max_ms. */
bool ops_fe_alive(const frontend_t *fe, uint32_t max_ms, char *why, size_t len);

#endif
