/* G.722 implementations side by side: libspandsp (what ngmedia links) and libavcodec (what
 * rtpengine uses). Encodes and decodes 16 kHz speech with both, reports CPU µs per 20 ms frame
 * (thread CPU time, best of 5 runs, so other load on the machine matters less), whether the
 * bitstreams and the decoded samples are identical, and the round-trip SNR.
 * Build and run: bench/g722-libs.sh (needs libspandsp-dev, libavcodec-dev and sox). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <spandsp.h>

#define FRAME 320 /* 20 ms at 16 kHz */
#define BYTES 160 /* 20 ms at 64 kbit/s */
#define REPEAT 20

static double cpu_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static double snr_at_best_lag(const int16_t *ref, const int16_t *out, int n) {
    double best = -1e9;
    for (int lag = 0; lag < 64; lag++) {
        double s = 0, e = 0;
        for (int i = 0; i + lag < n; i++) {
            double d = (double)ref[i] - out[i + lag];
            s += (double)ref[i] * ref[i];
            e += d * d;
        }
        double v = 10 * log10(s / (e > 0 ? e : 1));
        if (v > best)
            best = v;
    }
    return best;
}

static void spandsp_run(const int16_t *pcm, int frames, uint8_t *bits, int16_t *out, double *enc,
                        double *dec) {
    double t0 = cpu_us();
    for (int r = 0; r < REPEAT; r++) {
        g722_encode_state_t *e = g722_encode_init(NULL, 64000, 0);
        for (int f = 0; f < frames; f++)
            g722_encode(e, bits + f * BYTES, pcm + f * FRAME, FRAME);
        g722_encode_free(e);
    }
    double t1 = cpu_us();
    for (int r = 0; r < REPEAT; r++) {
        g722_decode_state_t *d = g722_decode_init(NULL, 64000, 0);
        for (int f = 0; f < frames; f++)
            g722_decode(d, out + f * FRAME, bits + f * BYTES, BYTES);
        g722_decode_free(d);
    }
    double t2 = cpu_us();
    *enc = (t1 - t0) / REPEAT / frames;
    *dec = (t2 - t1) / REPEAT / frames;
}

static void avcodec_run(const int16_t *pcm, int frames, uint8_t *bits, int16_t *out, double *enc,
                        double *dec) {
    const AVCodec *ec = avcodec_find_encoder(AV_CODEC_ID_ADPCM_G722);
    const AVCodec *dc = avcodec_find_decoder(AV_CODEC_ID_ADPCM_G722);
    AVPacket *pkt = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    double te = 0, td = 0;
    for (int r = 0; r < REPEAT; r++) {
        AVCodecContext *e = avcodec_alloc_context3(ec);
        e->sample_rate = 16000;
        e->sample_fmt = AV_SAMPLE_FMT_S16;
        e->frame_size = FRAME;
        av_channel_layout_default(&e->ch_layout, 1);
        if (avcodec_open2(e, ec, NULL) < 0) {
            fprintf(stderr, "libavcodec: cannot open the G.722 encoder\n");
            exit(1);
        }
        int pos = 0;
        double t0 = cpu_us();
        for (int f = 0; f < frames; f++) {
            fr->nb_samples = FRAME;
            fr->format = AV_SAMPLE_FMT_S16;
            fr->sample_rate = 16000;
            av_channel_layout_default(&fr->ch_layout, 1);
            av_frame_get_buffer(fr, 0);
            memcpy(fr->data[0], pcm + f * FRAME, FRAME * 2);
            avcodec_send_frame(e, fr);
            av_frame_unref(fr);
            while (avcodec_receive_packet(e, pkt) == 0) {
                memcpy(bits + pos, pkt->data, pkt->size);
                pos += pkt->size;
                av_packet_unref(pkt);
            }
        }
        te += cpu_us() - t0;
        avcodec_free_context(&e);

        AVCodecContext *d = avcodec_alloc_context3(dc);
        d->sample_rate = 16000;
        av_channel_layout_default(&d->ch_layout, 1);
        avcodec_open2(d, dc, NULL);
        int op = 0;
        t0 = cpu_us();
        for (int f = 0; f < frames; f++) {
            pkt->data = bits + f * BYTES;
            pkt->size = BYTES;
            avcodec_send_packet(d, pkt);
            while (avcodec_receive_frame(d, fr) == 0) {
                memcpy(out + op, fr->data[0], fr->nb_samples * 2);
                op += fr->nb_samples;
                av_frame_unref(fr);
            }
        }
        td += cpu_us() - t0;
        avcodec_free_context(&d);
    }
    pkt->data = NULL;
    pkt->size = 0;
    av_packet_free(&pkt);
    av_frame_free(&fr);
    *enc = te / REPEAT / frames;
    *dec = td / REPEAT / frames;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s SPEECH_16KHZ_S16LE.raw\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    int frames = (int)(len / 2 / FRAME);
    int n = frames * FRAME;
    int16_t *pcm = malloc(n * 2), *out_s = malloc(n * 2), *out_a = malloc(n * 2);
    uint8_t *bits_s = malloc(n / 2), *bits_a = malloc(n / 2);
    if (fread(pcm, 2, n, f) != (size_t)n)
        return 1;
    fclose(f);

    double best[4] = {1e9, 1e9, 1e9, 1e9};
    for (int run = 0; run < 5; run++) {
        double v[4];
        spandsp_run(pcm, frames, bits_s, out_s, &v[0], &v[1]);
        avcodec_run(pcm, frames, bits_a, out_a, &v[2], &v[3]);
        for (int i = 0; i < 4; i++)
            if (v[i] < best[i])
                best[i] = v[i];
    }
    printf("%d frames of 20 ms, CPU µs per frame (best of 5):\n", frames);
    printf("  libspandsp              encode %6.2f  decode %6.2f  SNR %.2f dB\n", best[0], best[1],
           snr_at_best_lag(pcm, out_s, n));
    printf("  libavcodec (ffmpeg %s) encode %6.2f  decode %6.2f  SNR %.2f dB\n", av_version_info(),
           best[2], best[3], snr_at_best_lag(pcm, out_a, n));
    printf("  bitstreams identical: %s; decoded samples identical: %s\n",
           memcmp(bits_s, bits_a, n / 2) ? "no" : "yes", memcmp(out_s, out_a, n * 2) ? "no" : "yes");
    return 0;
}
