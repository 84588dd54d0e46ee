/* rvbuild's builder benchmark: a fixed amount of integer, branchy, memory-bound work shaped
 * like a compiler's: hash-table inserts and lookups, a sort, binary-search lookups, and an
 * expression tree built with malloc, folded through function pointers and freed (indirect
 * calls and pointer chasing are what make emulated compilers slow),
 * timed by the program itself with CLOCK_MONOTONIC so that no network latency counts.
 *
 * Usage: probe-bench [ROUNDS]   (default 8; one round is about 18 ms on the reference machine)
 * Prints one line:  rounds=R ns=ELAPSED checksum=HEX
 * The checksum depends only on ROUNDS, so a wrong result under emulation shows up as a
 * different checksum than the native run's. Built statically for each system by the host
 * provider (nix/host/builders/probe-bench.sh); rvbuild runs it during `builders probe`. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEYS 40000u
#define SLOTS 65536u /* power of two, > KEYS */

static uint64_t rng_state;

static uint32_t next_random(void)
{
	/* xorshift64*: deterministic on every architecture. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

struct slot {
	uint32_t key;
	uint32_t count;
};

static struct slot table[SLOTS];
static uint32_t keys[KEYS];
static uint32_t scratch[KEYS];

static uint32_t hash32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352dU;
	x ^= x >> 15;
	x *= 0x846ca68bU;
	x ^= x >> 16;
	return x;
}

/* Inserts or counts a key; 0 is the empty marker, so keys are made non-zero. */
static uint32_t table_add(uint32_t key)
{
	uint32_t i = hash32(key) & (SLOTS - 1);
	for (;;) {
		if (table[i].key == key) {
			return ++table[i].count;
		}
		if (table[i].key == 0) {
			table[i].key = key;
			table[i].count = 1;
			return 1;
		}
		i = (i + 1) & (SLOTS - 1);
	}
}

static void merge_sort(uint32_t *a, uint32_t *tmp, uint32_t n)
{
	if (n < 16) {
		for (uint32_t i = 1; i < n; i++) {
			uint32_t v = a[i];
			uint32_t j = i;
			while (j > 0 && a[j - 1] > v) {
				a[j] = a[j - 1];
				j--;
			}
			a[j] = v;
		}
		return;
	}
	uint32_t half = n / 2;
	merge_sort(a, tmp, half);
	merge_sort(a + half, tmp, n - half);
	uint32_t i = 0, j = half, k = 0;
	while (i < half && j < n) {
		tmp[k++] = a[i] <= a[j] ? a[i++] : a[j++];
	}
	while (i < half) {
		tmp[k++] = a[i++];
	}
	while (j < n) {
		tmp[k++] = a[j++];
	}
	memcpy(a, tmp, n * sizeof *a);
}

/* Binary-search "symbol lookups" in the sorted keys, branching on the outcome. */
static uint64_t lookups(const uint32_t *sorted, uint32_t n, uint32_t count)
{
	uint64_t acc = 0;
	for (uint32_t q = 0; q < count; q++) {
		uint32_t want = next_random() | 1u;
		uint32_t lo = 0, hi = n;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (sorted[mid] < want) {
				lo = mid + 1;
			} else {
				hi = mid;
			}
		}
		acc += lo < n && sorted[lo] == want ? 7u : (lo & 3u);
	}
	return acc;
}

/* A tiny "AST": nodes allocated one by one, evaluated through a per-kind function table. */
struct node;
typedef uint32_t (*eval_fn)(const struct node *);

struct node {
	uint32_t kind;
	uint32_t value;
	struct node *left;
	struct node *right;
};

static uint32_t eval(const struct node *n);
static uint32_t eval_leaf(const struct node *n) { return n->value; }
static uint32_t eval_add(const struct node *n) { return eval(n->left) + eval(n->right); }
static uint32_t eval_xor(const struct node *n) { return eval(n->left) ^ (eval(n->right) << 1); }
static uint32_t eval_mul(const struct node *n) { return eval(n->left) * (eval(n->right) | 1u); }
static uint32_t eval_sel(const struct node *n)
{
	uint32_t c = eval(n->left);
	return c & 4u ? c + n->value : eval(n->right) - c;
}

static const eval_fn eval_table[] = { eval_leaf, eval_add, eval_xor, eval_mul, eval_sel };

static uint32_t eval(const struct node *n)
{
	return eval_table[n->kind](n);
}

static struct node *build_tree(uint32_t depth)
{
	struct node *n = malloc(sizeof *n);
	if (n == NULL) {
		fputs("probe-bench: out of memory\n", stderr);
		exit(1);
	}
	uint32_t r = next_random();
	if (depth == 0 || r % 8u == 0) {
		n->kind = 0;
		n->value = r;
		n->left = n->right = NULL;
	} else {
		n->kind = 1u + r % 4u;
		n->value = r >> 8;
		n->left = build_tree(depth - 1);
		n->right = build_tree(depth - 1);
	}
	return n;
}

static void free_tree(struct node *n)
{
	if (n != NULL) {
		free_tree(n->left);
		free_tree(n->right);
		free(n);
	}
}

static uint64_t trees(uint32_t count)
{
	uint64_t acc = 0;
	for (uint32_t t = 0; t < count; t++) {
		struct node *root = build_tree(16);
		for (uint32_t pass = 0; pass < 4; pass++) {
			acc += eval(root);
		}
		free_tree(root);
	}
	return acc;
}

static uint64_t round_work(uint32_t round)
{
	uint64_t sum = 0;
	memset(table, 0, sizeof table);
	rng_state = 0x9E3779B97F4A7C15ULL ^ (uint64_t)round;
	for (uint32_t i = 0; i < KEYS; i++) {
		/* A small key space, so that repeats (the "already seen" branch) are common. */
		keys[i] = (next_random() % (KEYS * 2u)) | 1u;
		sum += table_add(keys[i]);
	}
	for (uint32_t i = 0; i < KEYS; i++) {
		sum += table_add(keys[(i * 7919u) % KEYS]);
	}
	merge_sort(keys, scratch, KEYS);
	for (uint32_t i = 1; i < KEYS; i++) {
		sum = sum * 31u + (keys[i] - keys[i - 1]);
	}
	sum += lookups(keys, KEYS, KEYS * 4u);
	sum += trees(16);
	return sum;
}

int main(int argc, char **argv)
{
	long rounds = 8;
	if (argc > 1) {
		char *end = NULL;
		rounds = strtol(argv[1], &end, 10);
		if (end == argv[1] || *end != '\0' || rounds < 1 || rounds > 100000) {
			fprintf(stderr, "probe-bench: ROUNDS must be a number from 1 to 100000, not %s\n", argv[1]);
			return 2;
		}
	}
	struct timespec start, end;
	if (clock_gettime(CLOCK_MONOTONIC, &start) != 0) {
		perror("probe-bench: clock_gettime");
		return 1;
	}
	uint64_t checksum = 0;
	for (long r = 0; r < rounds; r++) {
		checksum = checksum * 1000003u ^ round_work((uint32_t)r);
	}
	if (clock_gettime(CLOCK_MONOTONIC, &end) != 0) {
		perror("probe-bench: clock_gettime");
		return 1;
	}
	int64_t ns = (int64_t)(end.tv_sec - start.tv_sec) * 1000000000 + (end.tv_nsec - start.tv_nsec);
	printf("rounds=%ld ns=%lld checksum=%016llx\n", rounds, (long long)ns, (unsigned long long)checksum);
	return 0;
}
