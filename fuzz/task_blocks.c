/*
 * Fuzz harness: task blocks (executor/internal/task_blocks.h), the slab the
 * single-threaded executor takes task memory from.
 *
 * The input drives allocations of every size class, frees by the owner and
 * through the remote stack (the path other threads take), and failures of
 * the next block allocation. A model keeps every slot handed out, filled
 * with a pattern of its own. After every operation it checks that:
 *   - no slot is handed out twice, each is 16-aligned and no write to one
 *     slot changed another (patterns intact);
 *   - the free lists and the remote stack hold only freed slots, each once,
 *     of the right class; live == slots the model holds + remote; and no
 *     slot is lost: per class, the slots carved from blocks equal those
 *     handed out plus those on the free list and the remote stack;
 *   - a new block appears only when its class had nothing free anywhere
 *     (free list, bump tail, remote stack), and a failed block allocation
 *     returns NULL and changes nothing;
 *   - the allocator's live blocks and bytes are the blocks' count and size.
 * At the end every slot is freed, the blocks are destroyed and the
 * allocator must have no live block.
 */
#include <string.h>

#include "executor/internal/task_blocks.h"
#include "fuzz/fuzz_harnesses.h"
#include "fuzz/fuzz_util.h"

#define H "task_blocks"
#define CHECK(c, ...) \
  do {                \
    if (!(c)) fz_fail(H, __VA_ARGS__); \
  } while (0)

#define MAX_LIVE 256

typedef struct tb_slot {
  unsigned char *p;
  size_t ci;
  uint8_t pattern;
} tb_slot;

typedef struct tb_world {
  cx__task_blocks tb;
  tb_slot live[MAX_LIVE];
  int nlive;
  /* Slots each class has carved from its blocks (bumped) so far: every one
   * is handed out, on its free list or on the remote stack, always. */
  size_t carved[CX__TASK_BLOCK_CLASSES];
  uint8_t next_pattern;
} tb_world;

static size_t tb_bytes(size_t ci) {
  return (ci + 1) * CX__TASK_BLOCK_GRAIN;
}

FZ_NO_COVERAGE static bool tb_is_live(const tb_world *w, const void *p) {
  for (int i = 0; i < w->nlive; i++)
    if (w->live[i].p == p) return true;
  return false;
}

/* Free slots of class ci waiting on the remote stack. */
FZ_NO_COVERAGE static size_t tb_remote_of(tb_world *w, size_t ci,
                                          size_t *all) {
  size_t n = 0, total = 0;
  cx__tb_slot *s = atomic_load(&w->tb.remote);
  for (; s; s = s->next) {
    CHECK(total++ <= 1u << 20, "remote stack cycles");
    CHECK(s->cls < CX__TASK_BLOCK_CLASSES, "remote slot of class %zu", s->cls);
    CHECK(!tb_is_live(w, s), "a slot on the remote stack is handed out");
    if (s->cls == ci) n++;
  }
  if (all) *all = total;
  return n;
}

FZ_NO_COVERAGE static void tb_check(tb_world *w, const char *where) {
  for (int i = 0; i < w->nlive; i++) {
    const tb_slot *s = &w->live[i];
    for (size_t k = 0; k < tb_bytes(s->ci); k++)
      CHECK(s->p[k] == s->pattern, "%s: slot %d overwritten at byte %zu",
            where, i, k);
  }
  for (size_t ci = 0; ci < CX__TASK_BLOCK_CLASSES; ci++) {
    size_t n = 0;
    for (cx__tb_slot *s = w->tb.cls[ci].free; s; s = s->next) {
      CHECK(n++ <= 1u << 20, "%s: free list %zu cycles", where, ci);
      CHECK(((uintptr_t)s & 15) == 0, "%s: misaligned free slot", where);
      CHECK(!tb_is_live(w, s), "%s: a free slot is handed out", where);
    }
    size_t held = 0;
    for (int i = 0; i < w->nlive; i++) held += w->live[i].ci == ci;
    size_t remote = tb_remote_of(w, ci, NULL);
    CHECK(w->carved[ci] == held + n + remote,
          "%s: class %zu carved %zu slots, but %zu are handed out, %zu free "
          "and %zu on the remote stack (a slot was lost or duplicated)",
          where, ci, w->carved[ci], held, n, remote);
  }
  size_t remote = 0;
  tb_remote_of(w, 0, &remote);
  /* `live` counts a remotely freed slot until the owner takes it back. */
  CHECK(w->tb.live == (size_t)w->nlive + remote,
        "%s: live %zu, remote %zu, the model holds %d", where, w->tb.live,
        remote, w->nlive);
  fz_alloc_stats as = fz_alloc_stats_get();
  CHECK(as.live == (int64_t)w->tb.block_count &&
            as.live_bytes == (int64_t)w->tb.block_bytes,
        "%s: allocator has %lld blocks / %lld bytes, task blocks %zu / %zu",
        where, (long long)as.live, (long long)as.live_bytes,
        w->tb.block_count, w->tb.block_bytes);
}

static void tb_alloc(tb_world *w, size_t ci) {
  if (w->nlive == MAX_LIVE) return;
  cx__tb_class *c = &w->tb.cls[ci];
  bool had_free = c->free != NULL ||
                  (size_t)(c->end - c->bump) >= tb_bytes(ci) ||
                  tb_remote_of(w, ci, NULL) > 0;
  size_t blocks = w->tb.block_count, live = w->tb.live;
  char *bump = c->bump, *end = c->end;
  uint64_t failed = fz_alloc_stats_get().failed;
  unsigned char *p = cx__task_blocks_alloc(&w->tb, ci);
  if (p == NULL) {
    CHECK(fz_alloc_stats_get().failed == failed + 1,
          "NULL without a failed block allocation");
    CHECK(!had_free, "NULL although class %zu had a free slot", ci);
    /* It may have taken remote frees back (live drops by as many: the
     * check after the operation sees it), but no block and no slot. */
    CHECK(w->tb.block_count == blocks && w->tb.live <= live,
          "a failed allocation changed the counts");
    return;
  }
  CHECK(((uintptr_t)p & 15) == 0, "slot not 16-aligned");
  CHECK(!tb_is_live(w, p), "slot handed out twice");
  if (w->tb.block_count != blocks)
    CHECK(!had_free, "a new block although class %zu had a free slot", ci);
  /* Carved: from a new block, or the old block's tail. */
  if (w->tb.block_count != blocks ||
      ((char *)p == bump && (size_t)(end - bump) >= tb_bytes(ci)))
    w->carved[ci]++;
  tb_slot *s = &w->live[w->nlive++];
  s->p = p;
  s->ci = ci;
  s->pattern = ++w->next_pattern;
  memset(p, s->pattern, tb_bytes(ci));
}

static void tb_free(tb_world *w, int i, bool owner) {
  tb_slot s = w->live[i];
  w->live[i] = w->live[--w->nlive];
  cx__task_blocks_free(&w->tb, s.p, s.ci, owner);
}

int cx_fuzz_task_blocks(const uint8_t *data, size_t size) {
  fz_input in;
  fz_input_init(&in, data, size);
  fz_alloc_install(0);
  static tb_world w;
  memset(&w, 0, sizeof w);
  cx__task_blocks_init(&w.tb);
  while (fz_more(&in)) {
    uint8_t op = fz_u8(&in);
    uint8_t arg = fz_u8(&in);
    switch (op % 8) {
      case 0: case 1: case 2: /* allocate: classes near W1's size mostly */
        tb_alloc(&w, (op & 0x80) ? (size_t)(arg % CX__TASK_BLOCK_CLASSES)
                                 : (size_t)(3 + arg % 3));
        break;
      case 3: case 4: /* the owner frees */
        if (w.nlive) tb_free(&w, arg % w.nlive, true);
        break;
      case 5: /* another thread frees (the remote stack) */
        if (w.nlive) tb_free(&w, arg % w.nlive, false);
        break;
      case 6: /* the next block allocation fails */
        fz_alloc_fail_in(1);
        break;
      default: /* a burst: fill a class, then free half remotely */
        for (int k = 0; k < (arg % 64); k++) tb_alloc(&w, arg % 4);
        for (int k = w.nlive - 1; k >= 0; k -= 2) tb_free(&w, k, false);
        break;
    }
    tb_check(&w, "op");
  }
  fz_alloc_fail_in(0);
  while (w.nlive) tb_free(&w, w.nlive - 1, w.nlive % 2);
  tb_check(&w, "end");
  cx__task_blocks_destroy(&w.tb);
  fz_alloc_stats as = fz_alloc_stats_get();
  CHECK(as.live == 0, "%lld blocks left after destroy", (long long)as.live);
  fz_alloc_uninstall();
  return 0;
}
