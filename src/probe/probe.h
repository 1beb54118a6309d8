/*
 * probe.h - `postern probe`: audit the doors of any mail server (or of
 * this one, --self) from outside, the way an attacker would. A client
 * only: it shares the address parser with the server, never the session
 * engine. See docs/probe.md.
 */
#ifndef POSTERN_PROBE_H
#define POSTERN_PROBE_H

/*
 * Run `postern probe` with argv[0] == "probe". Prints the report (human
 * or --json) on stdout, errors on stderr. Returns the exit status: 0 when
 * no check failed, 1 when one did, 2 on a usage or connection error.
 */
int probe_main(int argc, char **argv);

#endif
