/*
 * An intrusive doubly-linked list (private to cexec).
 *
 * The node lives inside the element (a waiting send future, a task), so
 * linking allocates nothing and unlinking from the middle is O(1): what the
 * async channel's FIFO of waiting senders needs, and what the executor's
 * queues need. A node is linked in at most one list at a time; the list
 * does not own its elements. Not thread-safe: the owner of the list guards
 * it (e.g. the channel's mutex).
 *
 *   typedef struct waiter { int id; cx__list_node link; } waiter;
 *   cx__list l = CX__LIST_INIT;
 *   cx__list_push_back(&l, &w->link);
 *   waiter *first = CX__CONTAINER_OF(cx__list_front(&l), waiter, link);
 *
 * Arguments are never NULL (internal helpers on hot paths).
 */
#ifndef CEXEC_EXECUTOR_INTERNAL_LIST_H
#define CEXEC_EXECUTOR_INTERNAL_LIST_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cx__list_node {
  struct cx__list_node *prev, *next; /* both NULL when unlinked */
} cx__list_node;

typedef struct cx__list {
  cx__list_node *head, *tail;
} cx__list;

#ifdef __cplusplus
#define CX__LIST_INIT (cx__list{NULL, NULL})
#else
#define CX__LIST_INIT ((cx__list){NULL, NULL})
#endif

/* The element that holds `node` as its `member`. */
#define CX__CONTAINER_OF(node, type, member) \
  ((type *)(void *)((char *)(node)-offsetof(type, member)))

static inline void cx__list_init(cx__list *l) {
  l->head = l->tail = NULL;
}

static inline bool cx__list_is_empty(const cx__list *l) {
  return l->head == NULL;
}

/* The first node, or NULL. */
static inline cx__list_node *cx__list_front(const cx__list *l) {
  return l->head;
}

static inline void cx__list_push_back(cx__list *l, cx__list_node *n) {
  n->next = NULL;
  n->prev = l->tail;
  if (l->tail)
    l->tail->next = n;
  else
    l->head = n;
  l->tail = n;
}

static inline void cx__list_push_front(cx__list *l, cx__list_node *n) {
  n->prev = NULL;
  n->next = l->head;
  if (l->head)
    l->head->prev = n;
  else
    l->tail = n;
  l->head = n;
}

/* Unlinks n, which must be in l. */
static inline void cx__list_remove(cx__list *l, cx__list_node *n) {
  if (n->prev)
    n->prev->next = n->next;
  else
    l->head = n->next;
  if (n->next)
    n->next->prev = n->prev;
  else
    l->tail = n->prev;
  n->prev = n->next = NULL;
}

/* Unlinks and returns the first node, or NULL when empty. */
static inline cx__list_node *cx__list_pop_front(cx__list *l) {
  cx__list_node *n = l->head;
  if (n) cx__list_remove(l, n);
  return n;
}

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_EXECUTOR_INTERNAL_LIST_H */
