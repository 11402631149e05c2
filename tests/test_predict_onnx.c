/* `clcnn predict --model FILE.onnx` and its parts:
 * - the preprocessing (tools/clcnn/preprocess.c: resize of the shorter side, centre crop,
 *   normalisation, NCHW) against a plain double reference written from torchvision's
 *   definitions, on gray and RGB images that shrink, grow and are not square;
 * - the command ($CLCNN_CLI under ctest) on the committed models of tests/data
 *   (make_predict_models.py: linear classifiers, so the host computes the expected scores
 *   from the model's own initializers): JPEG (written here with libjpeg), PNG (image.c's
 *   writer) and PGM images in one batch, a fixed-batch grayscale model that ends with
 *   Softmax, labels files;
 * - errors: a missing image, a truncated JPEG, huge declared JPEG sizes, a wrong --mean
 *   count, a file that is not ONNX, a missing labels file. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jpeglib.h>

#include "image.h"
#include "preprocess.h"

static char *tmp;
static const char *cli;

/* ---- the reference: torchvision's recipe, plainly, in double ---------------------------- */

/* Weight of input j for output o when an axis of n_in is resampled to n_out: the overlap
 * of the output pixel's footprint with input pixel j when shrinking (area average),
 * linear interpolation between pixel centres (clamped at the edges) when growing. */
static double ref_weight(int n_in, int n_out, int o, int j) {
    if (n_out <= n_in) {
        double r = (double)n_in / n_out, a = o * r, b = (o + 1) * r;
        double lo = fmax(a, j), hi = fmin(b, j + 1.0);
        return hi > lo ? (hi - lo) / r : 0;
    }
    double x = fmin(fmax((o + 0.5) * n_in / n_out - 0.5, 0), n_in - 1);
    double f = x - floor(x);
    int j0 = (int)floor(x), j1 = j0 + 1 < n_in ? j0 + 1 : j0;
    return (j == j0 ? 1 - f : 0) + (j == j1 ? f : 0);
}

/* src (w x h, c interleaved channels, doubles in [0, 1]) -> dst (c x ch x cw planes). */
static void ref_preprocess(const double *src, int w, int h, int c, int size, int cw, int ch,
                           const double *mean, const double *std, double *dst) {
    int shorter = (int)floor(size * 256.0 / 224.0 + 0.5);
    int rw = w <= h ? shorter : (int)((double)shorter * w / h);
    int rh = w <= h ? (int)((double)shorter * h / w) : shorter;
    int x0 = (int)nearbyint((rw - cw) / 2.0), y0 = (int)nearbyint((rh - ch) / 2.0);
    for (int k = 0; k < c; k++)
        for (int y = 0; y < ch; y++)
            for (int x = 0; x < cw; x++) {
                double acc = 0;
                for (int j = 0; j < h; j++) {
                    double wy = ref_weight(h, rh, y0 + y, j);
                    if (wy == 0) continue;
                    for (int i = 0; i < w; i++)
                        acc += wy * ref_weight(w, rw, x0 + x, i) * src[((size_t)j * w + i) * c + k];
                }
                dst[((size_t)k * ch + y) * cw + x] = (acc - mean[k]) / std[k];
            }
}

static void check_preprocess(int w, int h, int c, int size, int cw, int ch, uint64_t seed) {
    tu_rng r = tu_rng_seed(seed);
    size_t n = (size_t)w * h * c, out = (size_t)cw * ch * c;
    image img = {w, h, c, malloc(n * sizeof(float))};
    double *src = malloc(n * sizeof *src), *ref = malloc(out * sizeof *ref);
    float *got = malloc(out * sizeof *got);
    for (size_t i = 0; i < n; i++)
        src[i] = img.px[i] = tu_rng_uniform(&r, 0, 1);
    const double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};
    preprocess_params p = {.size = size, .h = ch, .w = cw, .c = c};
    memcpy(p.mean, mean, sizeof mean);
    memcpy(p.std, std, sizeof std);
    TU_OK(preprocess_image(&img, &p, got));
    ref_preprocess(src, w, h, c, size, cw, ch, mean, std, ref);
    char what[96];
    snprintf(what, sizeof what, "preprocess %dx%dx%d size %d crop %dx%d", w, h, c, size, cw, ch);
    assert_true(tu_close(what, got, ref, out, 1e-5, 1e-5));
    free(img.px), free(src), free(ref), free(got);
}

static void test_preprocess_vs_reference(void **state) {
    (void)state;
    check_preprocess(640, 480, 3, 224, 224, 224, 1); /* shrink: 341x256, crop 224 */
    check_preprocess(37, 53, 3, 16, 16, 16, 2);      /* shrink, portrait, odd offsets */
    check_preprocess(5, 7, 3, 8, 8, 8, 3);           /* grow: bilinear */
    check_preprocess(13, 10, 1, 8, 8, 8, 4);         /* gray, shrink one axis, grow the other */
    check_preprocess(100, 9, 3, 8, 8, 8, 5);         /* wide: the long side truncated */
    check_preprocess(20, 30, 1, 6, 4, 6, 6);         /* non-square crop */
    check_preprocess(9, 9, 3, 8, 8, 8, 7);           /* the resize is the identity */
}

static void test_preprocess_sizes(void **state) {
    (void)state;
    assert_int_equal(preprocess_shorter_side(224), 256);
    assert_int_equal(preprocess_shorter_side(299), 342);
    assert_int_equal(preprocess_shorter_side(8), 9);
    int rw, rh;
    preprocess_resized(640, 480, 256, &rw, &rh);
    assert_int_equal(rw, 341);
    assert_int_equal(rh, 256);
    preprocess_resized(480, 640, 256, &rw, &rh);
    assert_int_equal(rw, 256);
    assert_int_equal(rh, 341);
    /* Python's round: halves to the even neighbour */
    assert_int_equal(preprocess_crop_offset(257, 224), 16); /* 16.5 */
    assert_int_equal(preprocess_crop_offset(259, 224), 18); /* 17.5 */
    assert_int_equal(preprocess_crop_offset(256, 224), 16);
    assert_int_equal(preprocess_crop_offset(224, 224), 0);
    /* a resize smaller than the crop is refused */
    float px[4] = {0}, out[64];
    image img = {2, 2, 1, px};
    preprocess_params p = {.size = 4, .h = 8, .w = 8, .c = 1, .std = {1}};
    assert_int_equal(preprocess_image(&img, &p, out), CLCNN_ERR_SHAPE);
}

/* ---- images written by the test ------------------------------------------------------ */

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* A w x h JPEG of 8-bit RGB rows into memory (malloc'd by libjpeg; free() it). */
static unsigned char *jpeg_encode(const uint8_t *rgb, int w, int h, int quality,
                                  unsigned long *size) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    unsigned char *buf = NULL;
    *size = 0;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &buf, size);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, quality, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)ci.next_scanline * w * 3);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    return buf;
}

/* The test's own decode of a JPEG file: channels 1 (libjpeg's luminance) or 3, as doubles. */
static double *jpeg_decode(const char *path, int channels, int *w, int *h) {
    struct jpeg_decompress_struct ci;
    struct jpeg_error_mgr jerr;
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_decompress(&ci);
    jpeg_stdio_src(&ci, f);
    jpeg_read_header(&ci, TRUE);
    ci.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&ci);
    *w = (int)ci.output_width;
    *h = (int)ci.output_height;
    size_t row = (size_t)*w * channels;
    double *px = malloc(row * *h * sizeof *px);
    unsigned char *line = malloc(row);
    while (ci.output_scanline < ci.output_height) {
        size_t y = ci.output_scanline;
        jpeg_read_scanlines(&ci, &line, 1);
        for (size_t i = 0; i < row; i++)
            px[y * row + i] = line[i] / 255.0;
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    fclose(f);
    free(line);
    return px;
}

/* A smooth RGB picture with some noise, w x h x 3 bytes. */
static uint8_t *picture(int w, int h, uint64_t seed) {
    tu_rng r = tu_rng_seed(seed);
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = px + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(255 * x / (w - 1));
            p[1] = (uint8_t)(255 * y / (h - 1));
            p[2] = (uint8_t)tu_rng_int(&r, 0, 255);
        }
    return px;
}

static double *bytes_to_unit(const uint8_t *b, size_t n) {
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = b[i] / 255.0;
    return d;
}

/* ---- the command ----------------------------------------------------------------------- */

static int have_cli(void) {
    cli = getenv("CLCNN_CLI"); /* set by ctest; else the binary of this build tree */
    if (!cli || !*cli) cli = CLCNN_BINARY_DIR "/clcnn";
    if (access(cli, X_OK) != 0) {
        print_message("no clcnn binary at %s (set CLCNN_CLI): skipped\n", cli);
        return 0;
    }
    return 1;
}

/* Run "$CLCNN_CLI predict args" with stdout into tmp/<out>, stderr into tmp/<out>.err;
 * returns the exit code. */
static int predict(const char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int predict(const char *out, const char *fmt, ...) {
    char args[3000], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' predict %s > '%s/%s' 2> '%s/%s.err'", cli, args, tmp, out, tmp,
             out);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *name) {
    return tu_slurp(tmp, name);
}

/* Fails unless tmp/<name> contains want. */
static void expect_in(const char *name, const char *want) {
    char *s = slurp(name);
    if (!s || !strstr(s, want)) fail_msg("%s lacks '%s':\n%s", name, want, s ? s : "(missing)");
    free(s);
}

static char *tpath(const char *name) {
    static char buf[4][4096];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", tmp, name);
    return buf[i];
}

typedef struct model_ref {
    clcnn_graph *g;
    const float *w, *b; /* classes x features, classes */
    int classes, features;
} model_ref;

static model_ref load_model(const char *file) {
    model_ref m = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/%s", CLCNN_SOURCE_DIR, file);
    TU_OK(clcnn_graph_load_onnx(path, &m.g));
    size_t nw, nb;
    m.w = clcnn_graph_initializer(m.g, "W", &nw);
    m.b = clcnn_graph_initializer(m.g, "B", &nb);
    assert_non_null(m.w);
    assert_non_null(m.b);
    m.classes = (int)nb;
    m.features = (int)(nw / nb);
    return m;
}

/* Probabilities of the linear model on a preprocessed sample x (features doubles). */
static void ref_probs(const model_ref *m, const double *x, double *p) {
    double mx = -INFINITY;
    for (int k = 0; k < m->classes; k++) {
        double acc = m->b[k];
        for (int i = 0; i < m->features; i++)
            acc += (double)m->w[(size_t)k * m->features + i] * x[i];
        p[k] = acc;
        mx = fmax(mx, acc);
    }
    double sum = 0;
    for (int k = 0; k < m->classes; k++)
        sum += p[k] = exp(p[k] - mx);
    for (int k = 0; k < m->classes; k++)
        p[k] /= sum;
}

/* Checks the block "<image> (WxH):" of the output: `lines` rows "index name percent%", in
 * falling order, each percentage the reference's to the printed precision, the first row the
 * reference's argmax; names[k] (or "class k") printed. */
static void check_block(const char *out, const char *image, int w, int h, const double *p,
                        int classes, int lines, const char *const *names) {
    char head[4200];
    snprintf(head, sizeof head, "%s (%dx%d):\n", image, w, h);
    const char *at = strstr(out, head);
    if (!at) fail_msg("no '%s' in the output:\n%s", head, out);
    at += strlen(head);
    int best = 0;
    for (int k = 1; k < classes; k++)
        if (p[k] > p[best]) best = k;
    double last = 101;
    for (int l = 0; l < lines; l++) {
        const char *eol = strchr(at, '\n');
        assert_non_null(eol);
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(eol - at), at);
        int idx = -1;
        assert_int_equal(sscanf(line, "%d", &idx), 1);
        assert_true(idx >= 0 && idx < classes);
        char *pct = strrchr(line, '%');
        assert_non_null(pct);
        *pct = '\0';
        char *num = strrchr(line, ' ');
        double got = strtod(num + 1, NULL);
        if (fabs(got - 100 * p[idx]) > 0.0051)
            fail_msg("%s class %d: printed %.2f%%, the host computes %.4f%%", image, idx, got,
                     100 * p[idx]);
        if (l == 0 && idx != best)
            fail_msg("%s: top-1 is class %d, the host's is %d", image, idx, best);
        assert_true(got <= last);
        last = got;
        char name[64];
        if (names && names[idx])
            snprintf(name, sizeof name, " %s ", names[idx]);
        else
            snprintf(name, sizeof name, " class %d ", idx);
        if (!strstr(line, name)) fail_msg("%s: '%s' lacks the name '%s'", image, line, name);
        at = eol + 1;
    }
}

static void test_predict_rgb_batch(void **state) {
    (void)state;
    if (!have_cli()) skip();
    model_ref m = load_model("predict_rgb.onnx");
    assert_int_equal(m.features, 3 * 8 * 8);
    const double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};
    double x[192], p[5];

    /* JPEG 40x30 */
    uint8_t *rgb = picture(40, 30, 11);
    unsigned long jn;
    unsigned char *jpg = jpeg_encode(rgb, 40, 30, 95, &jn);
    write_file(tpath("a.jpg"), jpg, jn);
    free(rgb);
    /* PNG 20x25 RGB, PGM 13x10 gray (replicated into RGB) */
    uint8_t *png = picture(20, 25, 12);
    TU_OK(image_write_png(tpath("b.png"), 20, 25, 3, png));
    tu_rng r = tu_rng_seed(13);
    uint8_t pgm[64 + 130];
    int hl = snprintf((char *)pgm, 64, "P5\n13 10\n255\n");
    for (int i = 0; i < 130; i++)
        pgm[hl + i] = (uint8_t)tu_rng_int(&r, 0, 255);
    write_file(tpath("c.pgm"), pgm, (size_t)hl + 130);

    char model[4096];
    snprintf(model, sizeof model, "%s/tests/data/predict_rgb.onnx", CLCNN_SOURCE_DIR);
    int rc = predict("rgb.out", "--model '%s' --top 5 '%s' '%s' '%s'", model, tpath("a.jpg"),
                     tpath("b.png"), tpath("c.pgm"));
    char *out = slurp("rgb.out");
    print_message("%s", out);
    if (rc != 0) fail_msg("exit %d:\n%s", rc, slurp("rgb.out.err"));

    int w, h;
    double *a = jpeg_decode(tpath("a.jpg"), 3, &w, &h);
    ref_preprocess(a, w, h, 3, 8, 8, 8, mean, std, x);
    ref_probs(&m, x, p);
    check_block(out, tpath("a.jpg"), 40, 30, p, 5, 5, NULL);
    free(a);

    double *b = bytes_to_unit(png, 20 * 25 * 3);
    ref_preprocess(b, 20, 25, 3, 8, 8, 8, mean, std, x);
    ref_probs(&m, x, p);
    check_block(out, tpath("b.png"), 20, 25, p, 5, 5, NULL);
    free(b);

    double c[130 * 3];
    for (int i = 0; i < 130; i++)
        c[3 * i] = c[3 * i + 1] = c[3 * i + 2] = pgm[hl + i] / 255.0;
    ref_preprocess(c, 13, 10, 3, 8, 8, 8, mean, std, x);
    ref_probs(&m, x, p);
    check_block(out, tpath("c.pgm"), 13, 10, p, 5, 5, NULL);

    /* --size, --mean, --std and labels, on the PNG alone */
    const char *names[5] = {"cat", "dog", "bird", "fish", "a longer label with spaces"};
    FILE *f = fopen(tpath("labels.txt"), "w");
    for (int i = 0; i < 5; i++)
        fprintf(f, "%s\r\n", names[i]);
    fclose(f);
    const double mean2[3] = {0.5, 0.4, 0.3}, std2[3] = {0.25, 0.5, 0.2};
    rc = predict("rgb2.out",
                 "--model '%s' --size 12 --mean 0.5,0.4,0.3 --std 0.25,0.5,0.2 --top 3 "
                 "--labels '%s' '%s'",
                 model, tpath("labels.txt"), tpath("b.png"));
    free(out);
    out = slurp("rgb2.out");
    print_message("%s", out);
    assert_int_equal(rc, 0);
    b = bytes_to_unit(png, 20 * 25 * 3);
    ref_preprocess(b, 20, 25, 3, 12, 8, 8, mean2, std2, x);
    ref_probs(&m, x, p);
    check_block(out, tpath("b.png"), 20, 25, p, 5, 3, names);
    free(b);
    free(out);

    /* a labels file with fewer lines than classes: indices and a note */
    f = fopen(tpath("short.txt"), "w");
    fprintf(f, "cat\ndog\n");
    fclose(f);
    rc = predict("rgb3.out", "--model '%s' --labels '%s' '%s'", model, tpath("short.txt"),
                 tpath("b.png"));
    assert_int_equal(rc, 0);
    expect_in("rgb3.out", "class ");
    expect_in("rgb3.out.err", "has 2 lines for the model's 5 classes");

    free(png);
    free(jpg);
    clcnn_graph_free(m.g);
}

/* A fixed batch of 1 (one run per image), grayscale input 6 high and 4 wide, and a model
 * that ends with Softmax: its output is printed as it is. */
static void test_predict_gray_softmax(void **state) {
    (void)state;
    if (!have_cli()) skip();
    model_ref m = load_model("predict_gray.onnx");
    assert_int_equal(m.features, 24);
    const double mean[1] = {0.449}, std[1] = {0.226};
    double x[24], p[4];

    uint8_t *rgb = picture(33, 17, 21);
    unsigned long jn;
    unsigned char *jpg = jpeg_encode(rgb, 33, 17, 90, &jn);
    write_file(tpath("g.jpg"), jpg, jn);
    uint8_t gray[9 * 14];
    tu_rng r = tu_rng_seed(22);
    for (int i = 0; i < 9 * 14; i++)
        gray[i] = (uint8_t)tu_rng_int(&r, 0, 255);
    TU_OK(image_write_png(tpath("g.png"), 9, 14, 1, gray));

    char model[4096];
    snprintf(model, sizeof model, "%s/tests/data/predict_gray.onnx", CLCNN_SOURCE_DIR);
    int rc = predict("gray.out", "--model '%s' --top 4 '%s' '%s'", model, tpath("g.jpg"),
                     tpath("g.png"));
    char *out = slurp("gray.out");
    print_message("%s", out);
    if (rc != 0) fail_msg("exit %d:\n%s", rc, slurp("gray.out.err"));

    int w, h;
    double *g = jpeg_decode(tpath("g.jpg"), 1, &w, &h);
    ref_preprocess(g, w, h, 1, 6, 4, 6, mean, std, x);
    ref_probs(&m, x, p);
    check_block(out, tpath("g.jpg"), 33, 17, p, 4, 4, NULL);
    free(g);
    g = bytes_to_unit(gray, 9 * 14);
    ref_preprocess(g, 9, 14, 1, 6, 4, 6, mean, std, x);
    ref_probs(&m, x, p);
    check_block(out, tpath("g.png"), 9, 14, p, 4, 4, NULL);
    free(g);

    /* the gray model takes one mean and one std */
    assert_int_equal(
        predict("gray2.out", "--model '%s' --mean 0.5,0.5,0.5 '%s'", model, tpath("g.png")), 2);
    expect_in("gray2.out.err", "--mean has 3 values; the model takes 1-channel images");
    free(out);
    free(rgb);
    free(jpg);
    clcnn_graph_free(m.g);
}

static void test_predict_errors(void **state) {
    (void)state;
    if (!have_cli()) skip();
    char model[4096];
    snprintf(model, sizeof model, "%s/tests/data/predict_rgb.onnx", CLCNN_SOURCE_DIR);
    uint8_t *rgb = picture(64, 48, 31);
    unsigned long jn;
    unsigned char *jpg = jpeg_encode(rgb, 64, 48, 90, &jn);
    write_file(tpath("ok.jpg"), jpg, jn);

    /* a missing image: named, the others still classified, exit 1 */
    assert_int_equal(
        predict("e1.out", "--model '%s' '%s' '%s'", model, tpath("nosuch.jpg"), tpath("ok.jpg")),
        1);
    expect_in("e1.out.err", "nosuch.jpg: cannot open");
    expect_in("e1.out", "ok.jpg (64x48):");

    /* a truncated JPEG: an error, not a picture filled with gray */
    write_file(tpath("trunc.jpg"), jpg, jn / 2);
    assert_int_equal(predict("e2.out", "--model '%s' '%s'", model, tpath("trunc.jpg")), 1);
    expect_in("e2.out.err", "trunc.jpg: bad JPEG");

    /* huge declared sizes in the frame header, refused before decoding */
    unsigned char *big = malloc(jn);
    memcpy(big, jpg, jn);
    size_t sof = 0;
    for (size_t i = 2; i + 9 < jn && !sof; i++)
        if (big[i] == 0xff && big[i + 1] == 0xc0) sof = i;
    assert_true(sof > 0);
    big[sof + 5] = 0x1f, big[sof + 6] = 0x40; /* height 8000 */
    big[sof + 7] = 0x1f, big[sof + 8] = 0x40; /* width 8000 */
    write_file(tpath("big.jpg"), big, jn);
    assert_int_equal(predict("e3.out", "--model '%s' '%s'", model, tpath("big.jpg")), 1);
    expect_in("e3.out.err", "8000x8000 pixels cannot be in a");
    /* 16000 x 8000 in a file padded after its end to a size that could hold them: too many
     * pixels all the same */
    big[sof + 5] = 0x3e, big[sof + 6] = 0x80;
    size_t padded = 300000;
    big = realloc(big, padded);
    memset(big + jn, 0, padded - jn);
    write_file(tpath("big1.jpg"), big, padded);
    assert_int_equal(predict("e3b.out", "--model '%s' '%s'", model, tpath("big1.jpg")), 1);
    expect_in("e3b.out.err", "is more than 64 megapixels");
    big[sof + 5] = 0xea, big[sof + 7] = 0xea; /* 60000 x 60000 */
    write_file(tpath("big2.jpg"), big, jn);
    assert_int_equal(predict("e4.out", "--model '%s' '%s'", model, tpath("big2.jpg")), 1);
    expect_in("e4.out.err", "is outside 1..16384");
    free(big);

    /* option errors: usage exit code 2 */
    assert_int_equal(predict("e5.out", "--model '%s' --mean 0.5,0.5 '%s'", model, tpath("ok.jpg")),
                     2);
    expect_in("e5.out.err", "--mean has 2 values; the model takes 3-channel images");
    assert_int_equal(predict("e6.out", "--model '%s' --std 1,2,x '%s'", model, tpath("ok.jpg")), 2);
    assert_int_equal(predict("e7.out", "--model '%s' --std 1,0,1 '%s'", model, tpath("ok.jpg")), 2);
    assert_int_equal(predict("e8.out", "--model '%s' --size 4 '%s'", model, tpath("ok.jpg")), 2);
    expect_in("e8.out.err", "less than the model's 8x8 input");
    assert_int_equal(predict("e9.out", "--model '%s' --invert '%s'", model, tpath("ok.jpg")), 2);
    assert_int_equal(predict("e10.out", "--labels x.txt '%s'", tpath("ok.jpg")), 2);
    expect_in("e10.out.err", "apply to ONNX models");

    /* not ONNX: a text file named .onnx, and an existing file of another kind */
    FILE *f = fopen(tpath("text.onnx"), "w");
    fprintf(f, "this is not a model\n");
    fclose(f);
    assert_int_equal(predict("e11.out", "--model '%s' '%s'", tpath("text.onnx"), tpath("ok.jpg")),
                     1);
    expect_in("e11.out.err", "not a valid ONNX file");
    assert_int_equal(predict("e12.out", "--model '%s' '%s'", tpath("ok.jpg"), tpath("ok.jpg")), 1);
    expect_in("e12.out.err", "cannot load ONNX model");

    /* a missing labels file */
    assert_int_equal(predict("e13.out", "--model '%s' --labels '%s' '%s'", model,
                             tpath("nolabels.txt"), tpath("ok.jpg")),
                     1);
    expect_in("e13.out.err", "cannot open labels file");
    free(rgb);
    free(jpg);
}

static int setup(void **state) {
    (void)state;
    tmp = tu_temp_dir("predict_onnx");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) return 1;
    free(tmp);
    return 0;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preprocess_vs_reference), cmocka_unit_test(test_preprocess_sizes),
        cmocka_unit_test(test_predict_rgb_batch),       cmocka_unit_test(test_predict_gray_softmax),
        cmocka_unit_test(test_predict_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
