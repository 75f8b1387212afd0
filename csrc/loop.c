/* stub: replaced by the real implementation */
#include <errno.h>
#include "loop.h"
fn_loop *fn_loop_new(void) {  return NULL; }
void fn_loop_free(fn_loop *loop) { (void)loop;  }
int fn_loop_fd(const fn_loop *loop) { (void)loop; return -ENOSYS; }
int fn_loop_listen(fn_loop *loop, const char *host, int port, int backlog, const fn_conn_opts *opts) { (void)loop; (void)host; (void)port; (void)backlog; (void)opts; return -ENOSYS; }
int fn_loop_listener_port(const fn_loop *loop, int listener) { (void)loop; (void)listener; return -ENOSYS; }
int fn_loop_unlisten(fn_loop *loop, int listener) { (void)loop; (void)listener; return -ENOSYS; }
int64_t fn_loop_connect(fn_loop *loop, const char *host, int port, const fn_conn_opts *opts) { (void)loop; (void)host; (void)port; (void)opts; return -ENOSYS; }
int fn_loop_poll(fn_loop *loop, fn_event *evs, int max, int timeout_ms) { (void)loop; (void)evs; (void)max; (void)timeout_ms; return -ENOSYS; }
int fn_loop_has_pending(const fn_loop *loop) { (void)loop; return -ENOSYS; }
int fn_loop_send(fn_loop *loop, uint64_t conn, const char *data, size_t len) { (void)loop; (void)conn; (void)data; (void)len; return -ENOSYS; }
int fn_loop_send_msg(fn_loop *loop, uint64_t conn, const char *data, size_t len) { (void)loop; (void)conn; (void)data; (void)len; return -ENOSYS; }
void fn_loop_flush(fn_loop *loop) { (void)loop;  }
int fn_loop_close(fn_loop *loop, uint64_t conn, int abort) { (void)loop; (void)conn; (void)abort; return -ENOSYS; }
int fn_loop_pause(fn_loop *loop, uint64_t conn, int paused) { (void)loop; (void)conn; (void)paused; return -ENOSYS; }
size_t fn_loop_output_size(const fn_loop *loop, uint64_t conn) { (void)loop; (void)conn; return 0; }
int fn_loop_peer(const fn_loop *loop, uint64_t conn, char *host, size_t hostlen, int *port) { (void)loop; (void)conn; (void)host; (void)hostlen; (void)port; return -ENOSYS; }
void fn_loop_get_stats(const fn_loop *loop, fn_loop_stats *out) { (void)loop; (void)out;  }
