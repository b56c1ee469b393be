/* forward_cli.c - `kbench forward`: options -> a model, a recipe, a backend -> the
 * forward pass (forward.c) -> rows, a per-layer table and the verdict. */
#include "bench/cli.h"
#include "bench/forward.h"

#include "ref/pool.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: kbench forward [options]\n"
    "A whole Qwen2 decoder chained from kbench's ops on one device, against the same\n"
    "graph in fp64: every op of every layer measured chained (its own inputs) and\n"
    "isolated (the reference's inputs, judged by its tolerance); names the first op\n"
    "that exceeds its tolerance, or says the drift is accumulated rounding.\n"
    "\n"
    "  --model PATH.gguf|synthetic:tiny|synthetic:qwen2.5-7b   (default synthetic:tiny)\n"
    "  --backend cpu|cuda|vulkan   the device that runs every op (default cpu)\n"
    "  --gemm ours|cublaslt        the GEMMs and weight conversions: our kernels (default)\n"
    "                              or cuBLASLt (same device as --backend cuda)\n"
    "  --recipe NAME               f32 (default), q4k-fp8-tensor, q4k-fp8-row, fp8-block\n"
    "                              (--list-recipes); --flush: fp8 subnormal results -> 0\n"
    "  --tokens ID[,ID...]         the prompt's token ids (default: 16 ids from the seed,\n"
    "                              791 among them when the vocabulary has it)\n"
    "  --steps N                   decode steps after the prompt, teacher-forced by the\n"
    "                              reference's argmax (default 3)\n"
    "  --repeat N                  the backend run N times, each on a fresh context:\n"
    "                              are the logits bit-identical? (default 1)\n"
    "  --seed N                    synthetic weights and default tokens (default 1)\n"
    "  --threshold X               chained cosine that marks a layer (default 0.99)\n"
    "  --no-isolated               skip the isolated checks (chained rows only)\n"
    "  --check-weights none|some|all  weight conversions judged: some = first and last\n"
    "                              layer and lm_head (default), all = every weight\n"
    "  --plant LAYER:NODE=VARIANT  run a test-only variant at one node (repeatable;\n"
    "                              layer -1 = embed, LAYERS = output_norm/lm_head)\n"
    "  --prefer V1,V2              variant names to prefer where a backend has several\n"
    "                              (default: the fastest cuda variants of the H200 table,\n"
    "                              " KB_FORWARD_PREFER ")\n"
    "  --prefer-from FILE.csv      at each node, first the variants a kbench CSV timed at\n"
    "                              its op and shape on its backend, fastest passing median\n"
    "                              first (e.g. a --shapes qwen2.5-7b table), then --prefer\n"
    "  --no-timing | --reps N      time each step as one device sequence (a CUDA graph\n"
    "                              or recorded command buffer where the backend can)\n"
    "  --fast-accum on|off --algo heuristic|exhaustive --vk-device N --threads N\n"
    "  --csv FILE --json FILE      every row (schema kbench-row-3: step, layer, node,\n"
    "                              measure columns)\n"
    "  --rows                      print every row, not only the per-layer table\n"
    "  --info                      print the model's shape and tensors, then exit\n"
    "  --quiet --progress --list-recipes --help\n"
    "Exit codes: 0 no op exceeds its tolerance, 1 an op does (the culprit is named),\n"
    "2 bad usage or input (a corrupt model file), 3 a backend error.\n";

static int bad(const char *fmt, const char *a) {
    fprintf(stderr, "kbench forward: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, " (see kbench forward --help)\n");
    return KB_EXIT_USAGE;
}

static void on_signal(int signo) { kb_harness_request_stop(signo); }

/* Default prompt: 16 ids from the seed, 791 among them when the vocabulary has it
 * (the id of the investigation that started kbench). */
static void default_tokens(kb_forward_cfg *cfg, uint64_t seed, int64_t vocab) {
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    cfg->n_tokens = 16;
    for (int i = 0; i < 16; i++) {
        x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
        cfg->tokens[i] = (int32_t)((x * 0x2545f4914f6cdd1dull >> 33) % (uint64_t)vocab);
    }
    if (vocab > 791) cfg->tokens[1] = 791;
}

static void print_weight(const kb_weight *w) {
    printf("tensor %-28s %-5s %lld x %lld\n", w->name, kb_dtype_name(w->type), (long long)w->rows, (long long)w->cols);
}

static void print_info(const kb_model *m) {
    const kb_model_dims *d = &m->d;
    printf("model %s\n", m->name);
    printf("layers %lld hidden %lld ffn %lld heads %lld kv_heads %lld head_dim %lld vocab %lld context %lld\n",
           (long long)d->layers, (long long)d->hidden, (long long)d->ffn, (long long)d->heads, (long long)d->kv_heads,
           (long long)d->head_dim, (long long)d->vocab, (long long)d->context);
    printf("rms_eps %.9g rope_base %.9g tied %d weight_bytes %.0f\n", d->eps, d->rope_base, m->tied, kb_model_weight_bytes(m));
    print_weight(&m->tok_embd);
    print_weight(&m->out_norm);
    if (!m->tied) print_weight(&m->output);
    for (int64_t l = 0; l < d->layers; l++) {
        const kb_layer_weights *w = &m->layer[l];
        const kb_weight *all[] = {&w->attn_norm, &w->wq, &w->bq, &w->wk, &w->bk, &w->wv, &w->bv,
                                  &w->wo,        &w->ffn_norm, &w->wgate, &w->wup, &w->wdown};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) print_weight(all[i]);
    }
}

static void print_summary(const kb_forward_cfg *cfg, const kb_forward_result *r) {
    const kb_model *m = cfg->model;
    printf("\n%s on %s%s%s, recipe %s%s\n", m->name, cfg->backend->name, cfg->gemm != cfg->backend ? " + " : "",
           cfg->gemm != cfg->backend ? cfg->gemm->name : "", cfg->recipe->name, cfg->flush ? " (flush)" : "");
    for (int s = 0; s < r->steps_done; s++) {
        printf("step %d %-8s  layer  min chained cosine (node)          worst isolated err/tol (node)\n", s,
               s == 0 ? "(prompt)" : "(decode)");
        for (int l = -1; l <= m->d.layers; l++) {
            const kb_forward_layer *fl = kb_forward_layer_at(r, m, s, l);
            if (!fl->min_cosine_node[0] && !fl->max_node[0]) continue;
            char where[16];
            snprintf(where, sizeof where, "%s", l < 0 ? "embed" : l == m->d.layers ? "head" : "");
            if (!where[0]) snprintf(where, sizeof where, "%d", l);
            printf("                 %5s  %.6f (%-20s)  ", where, fl->min_cosine, fl->min_cosine_node);
            if (fl->max_node[0]) printf("%8.3f (%s)%s\n", fl->max_err_over_tol, fl->max_node, fl->isolated_fail ? " FAIL" : "");
            else printf("       - (isolated not run)\n");
        }
        printf("  logits: argmax %d vs reference %d, pearson %.6f, cosine %.6f, top-5 overlap %d/5, max |diff| %.4g,\n"
               "          fit backend = %.4f * ref + %.4g, FNV-1a %016llx\n",
               r->argmax[s], r->ref_argmax[s], r->pearson[s], r->cosine[s], r->top5[s], r->max_abs[s], r->fit_a[s],
               r->fit_b[s], (unsigned long long)r->logits_hash[s]);
    }
    if (r->overflow_nodes) printf("overflow: %d node outputs overflowed their type to inf (see the rows' reason)\n", r->overflow_nodes);
    if (r->deterministic >= 0)
        printf("determinism: %d runs on fresh contexts: logits %s\n", cfg->repeat,
               r->deterministic ? "bit-identical" : "DIFFER between runs");
    if (r->prompt_s > 0 || r->decode_s > 0)
        printf("time: prompt %.1f us, decode %.1f us per token; weight-bytes floor %.1f us per token\n", r->prompt_s * 1e6,
               r->decode_s * 1e6, r->floor_s * 1e6);
    if (r->errors) {
        printf("verdict: none: the backend run stopped with an error (above) after %d of %d steps\n", r->steps_done, r->steps);
        return;
    }
    if (r->culprit_found)
        printf("verdict: %s (%s) at step %d, layer %d exceeds its tolerance: %s\n", r->culprit_node, r->culprit_op,
               r->culprit_step, r->culprit_layer, r->culprit_reason);
    else if (cfg->isolated)
        printf("verdict: no op exceeds its tolerance; the drift is accumulated rounding\n");
    else
        printf("verdict: isolated checks not run (--no-isolated): no op judged\n");
    if (r->drop_layer > -2)
        printf("chained cosine first drops below %g at layer %d (%s): %.6f\n", cfg->threshold, r->drop_layer, r->drop_node,
               r->drop_cosine);
    else
        printf("chained cosine stays >= %g through every layer\n", cfg->threshold);
}

int kb_forward_setup(int argc, char **argv, int test_variants, kb_forward_cli *cli) {
    memset(cli, 0, sizeof *cli);
    kb_forward_cfg *cfg = &cli->cfg;
    kb_model *m = &cli->model;
    const char *model = "synthetic:tiny", *backend = "cpu", *gemm = "ours", *recipe = "f32", *tokens = NULL;
    const char *csv_path = NULL, *json_path = NULL, *prefer_from = NULL;
    long long seed = 1, threads = 0, v;
    int quiet = 0, rows = 0, info = 0, progress = isatty(2);
    cfg->steps = 3;
    cfg->repeat = 1;
    cfg->threshold = 0.99;
    cfg->prefer = KB_FORWARD_PREFER;
    cfg->isolated = 1;
    cfg->check_weights = 1;
    cfg->timing = 1;
    cfg->reps = 10;
    cfg->opt.algo = "heuristic";
    cfg->opt.fast_accum = 0;
    cfg->opt.vk_device = -1;
    const char *tv = getenv("KB_TEST_VARIANTS");
    cfg->opt.test_variants = test_variants || (tv && !strcmp(tv, "1"));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED() \
    do { \
        if (!val) return bad("%s needs a value", a); \
        i++; \
    } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--list-recipes")) {
            for (int r = 0; r < kb_recipe_count; r++) printf("%-16s %s\n", kb_recipes[r].name, kb_recipes[r].summary);
            return 0;
        } else if (!strcmp(a, "--model")) { NEED(); model = val; }
        else if (!strcmp(a, "--backend")) { NEED(); backend = val; }
        else if (!strcmp(a, "--gemm")) { NEED(); gemm = val; }
        else if (!strcmp(a, "--recipe")) { NEED(); recipe = val; }
        else if (!strcmp(a, "--flush")) cfg->flush = 1;
        else if (!strcmp(a, "--tokens")) { NEED(); tokens = val; }
        else if (!strcmp(a, "--steps")) {
            NEED();
            if (kb_parse_ll(val, 0, 60, &v)) return bad("--steps: '%s' is not 0..60", val);
            cfg->steps = (int)v;
        } else if (!strcmp(a, "--repeat")) {
            NEED();
            if (kb_parse_ll(val, 1, 100, &v)) return bad("--repeat: '%s' is not 1..100", val);
            cfg->repeat = (int)v;
        } else if (!strcmp(a, "--seed")) {
            NEED();
            if (kb_parse_ll(val, 0, LLONG_MAX, &seed)) return bad("--seed: '%s' is not a non-negative integer", val);
        } else if (!strcmp(a, "--threads")) {
            NEED();
            if (kb_parse_ll(val, 1, 1024, &threads)) return bad("--threads: '%s' is not a thread count", val);
        } else if (!strcmp(a, "--threshold")) {
            NEED();
            char *end;
            cfg->threshold = strtod(val, &end);
            if (*end || end == val || !(cfg->threshold > -1 && cfg->threshold <= 1))
                return bad("--threshold: '%s' is not a cosine in (-1, 1]", val);
        } else if (!strcmp(a, "--no-isolated")) cfg->isolated = 0;
        else if (!strcmp(a, "--check-weights")) {
            NEED();
            if (!strcmp(val, "none")) cfg->check_weights = 0;
            else if (!strcmp(val, "some")) cfg->check_weights = 1;
            else if (!strcmp(val, "all")) cfg->check_weights = 2;
            else return bad("--check-weights: '%s' is not none, some or all", val);
        } else if (!strcmp(a, "--plant")) {
            NEED();
            kb_plant p;
            char node[64] = "", variant[96] = "";
            int layer, used = 0;
            if (cfg->n_plants == KB_MAX_PLANTS) return bad("--plant: at most %s", "8");
            if (sscanf(val, "%d:%63[a-z_0-9]=%95[a-z_0-9]%n", &layer, node, variant, &used) != 3 || val[used])
                return bad("--plant: '%s' is not LAYER:NODE=VARIANT", val);
            p.layer = layer;
            snprintf(p.node, sizeof p.node, "%s", node);
            snprintf(p.variant, sizeof p.variant, "%s", variant);
            cfg->plants[cfg->n_plants++] = p;
        } else if (!strcmp(a, "--prefer")) { NEED(); cfg->prefer = val; }
        else if (!strcmp(a, "--prefer-from")) { NEED(); prefer_from = val; }
        else if (!strcmp(a, "--no-timing")) cfg->timing = 0;
        else if (!strcmp(a, "--reps")) {
            NEED();
            if (kb_parse_ll(val, 1, 100000, &v)) return bad("--reps: '%s' is not a positive integer", val);
            cfg->reps = (int)v;
        } else if (!strcmp(a, "--fast-accum")) {
            NEED();
            if (!strcmp(val, "on")) cfg->opt.fast_accum = 1;
            else if (!strcmp(val, "off")) cfg->opt.fast_accum = 0;
            else return bad("--fast-accum: '%s' is not on or off", val);
        } else if (!strcmp(a, "--algo")) {
            NEED();
            if (strcmp(val, "heuristic") && strcmp(val, "exhaustive")) return bad("--algo: '%s' is not heuristic or exhaustive", val);
            cfg->opt.algo = val;
        } else if (!strcmp(a, "--vk-device")) {
            NEED();
            if (kb_parse_ll(val, 0, 64, &v)) return bad("--vk-device: '%s' is not a device index", val);
            cfg->opt.vk_device = (int)v;
        } else if (!strcmp(a, "--csv")) { NEED(); csv_path = val; }
        else if (!strcmp(a, "--json")) { NEED(); json_path = val; }
        else if (!strcmp(a, "--rows")) rows = 1;
        else if (!strcmp(a, "--info")) info = 1;
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--progress")) progress = 1;
        else return bad("unknown option '%s'", a);
#undef NEED
    }
    kb_set_ref_threads((int)threads);
    cfg->progress = progress;
    if (!(cfg->recipe = kb_recipe_find(recipe))) return bad("unknown recipe '%s' (see --list-recipes)", recipe);
    if (!(cfg->backend = kb_backend_find(backend))) return bad("unknown backend '%s'", backend);
    if (!strcmp(backend, "cublaslt")) return bad("--backend %s runs GEMMs only: use --backend cuda --gemm cublaslt", backend);
    if (!strcmp(gemm, "ours")) cfg->gemm = cfg->backend;
    else if (!strcmp(gemm, "cublaslt")) cfg->gemm = kb_backend_find("cublaslt");
    else return bad("--gemm: '%s' is not ours or cublaslt", gemm);
    if (cfg->gemm != cfg->backend && !cfg->recipe->fp8) return bad("--gemm cublaslt runs FP8 GEMMs: choose an fp8 recipe, not %s", recipe);
    if (cfg->n_plants && !(tv && !strcmp(tv, "1"))) return bad("--plant needs KB_TEST_VARIANTS=1 (%s)", "test-only variants");

    char msg[512];
    if (progress) fprintf(stderr, "forward: loading %s\n", model);
    const double t0 = kb_now_s();
    if (kb_model_load(model, (uint64_t)seed, m, msg, sizeof msg) != 0) {
        fprintf(stderr, "kbench forward: %s\n", msg);
        return KB_EXIT_USAGE;
    }
    if (progress) fprintf(stderr, "forward: model ready in %.1f s\n", kb_now_s() - t0);
    cfg->model = m;
    if (info) {
        print_info(m);
        kb_model_free(m);
        return 0;
    }
    if (tokens) {
        char buf[65536];
        snprintf(buf, sizeof buf, "%s", tokens);
        for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (cfg->n_tokens == KB_MAX_TOKENS) return kb_model_free(m), bad("--tokens: more than %s ids", "4096");
            if (kb_parse_ll(t, 0, m->d.vocab - 1, &v)) {
                kb_model_free(m);
                snprintf(msg, sizeof msg, "--tokens: '%s' is not a token id of this model (0..%lld)", t, (long long)m->d.vocab - 1);
                return bad("%s", msg);
            }
            cfg->tokens[cfg->n_tokens++] = (int32_t)v;
        }
        if (!cfg->n_tokens) return kb_model_free(m), bad("--tokens: no id in '%s'", tokens);
    } else {
        default_tokens(cfg, (uint64_t)seed, m->d.vocab);
    }
    char why[KB_MSG];
    if (cfg->backend->probe(&cfg->opt, why) != KB_OK || (cfg->gemm != cfg->backend && cfg->gemm->probe(&cfg->opt, why) != KB_OK)) {
        fprintf(stderr, "kbench forward: backend unavailable: %s\n", why);
        kb_model_free(m);
        return KB_EXIT_USAGE;
    }
    if (strcmp(cfg->backend->device()->key, cfg->gemm->device()->key)) {
        fprintf(stderr, "kbench forward: %s and %s are not one device\n", cfg->backend->name, cfg->gemm->name);
        kb_model_free(m);
        return KB_EXIT_USAGE;
    }

    if (prefer_from) {
        if (!(cli->prefer_from = kb_resume_load(prefer_from, "--prefer-from", msg, sizeof msg)))
            return kb_model_free(m), bad("%s", msg);
        cfg->prefer_from = cli->prefer_from;
    }
    cli->csv_path = csv_path;
    cli->json_path = json_path;
    cli->rows = rows;
    cli->quiet = quiet;
    return -1;
}

void kb_forward_cli_free(kb_forward_cli *cli) {
    kb_model_free(&cli->model);
    kb_resume_free(cli->prefer_from);
    cli->prefer_from = NULL;
    cli->cfg.prefer_from = NULL;
}

int kb_forward_main(int argc, char **argv) {
    const double t_start = kb_now_s();
    kb_forward_cli cli;
    int rc = kb_forward_setup(argc, argv, 0, &cli);
    if (rc >= 0) return rc;
    kb_forward_cfg cfg = cli.cfg;
    kb_harness h;
    memset(&h, 0, sizeof h);
    kb_run_info_fill(&h.info);
    FILE *csv = NULL, *json = NULL;
    if (!cli.quiet && cli.rows) h.reporters[h.n_reporters++] = kb_console_reporter(stdout);
    if (cli.csv_path) {
        if (!(csv = fopen(cli.csv_path, "w"))) return kb_forward_cli_free(&cli), bad("cannot write --csv file '%s'", cli.csv_path);
        h.reporters[h.n_reporters++] = kb_csv_reporter(csv);
    }
    if (cli.json_path) {
        if (!(json = fopen(cli.json_path, "w"))) return kb_forward_cli_free(&cli), bad("cannot write --json file '%s'", cli.json_path);
        h.reporters[h.n_reporters++] = kb_jsonl_reporter(json);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    kb_forward_result res;
    rc = kb_forward_run(&cfg, &h, NULL, &res);
    for (int i = 0; i < h.n_reporters; i++) kb_report_end(h.reporters[i], 0);
    if (csv) fclose(csv);
    if (json) fclose(json);
    if (!cli.quiet && res.layer && rc != KB_EXIT_USAGE) {
        print_summary(&cfg, &res);
        printf("wall time %.1f s (model, reference, conversion, steps, checks)\n", kb_now_s() - t_start);
    }
    kb_forward_result_free(&res);
    kb_forward_cli_free(&cli);
    return rc;
}
