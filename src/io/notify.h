/* The systemd readiness protocol (sd_notify) spoken by hand: one datagram to $NOTIFY_SOCKET per state
 * change, without libsystemd. A no-op when the variable is unset (not under systemd Type=notify). */
#ifndef LX_NOTIFY_H
#define LX_NOTIFY_H

/* Send "READY=1", "RELOADING=1", "STOPPING=1", "STATUS=..." lines. Never blocks; failures are logged once. */
void lx_notify(const char *state);

#endif
