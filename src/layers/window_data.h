/* R-CNN's window file, as BVLC's WindowDataLayer reads it
 * (src/caffe/layers/window_data_layer.cpp, DataLayerSetUp): repeated
 *   # image_index
 *   image_path
 *   channels
 *   height
 *   width
 *   num_windows
 *   class_index overlap x1 y1 x2 y2     (num_windows lines)
 * Windows with overlap >= fg_threshold are foreground (their class index
 * must be positive); those with overlap < bg_threshold background (label 0,
 * overlap 0); the rest are dropped.  Coordinates are inclusive pixels. */
#ifndef NS_LAYERS_WINDOW_DATA_H
#define NS_LAYERS_WINDOW_DATA_H

#include "core/layer.h"

typedef struct ns_window {
  int image, label;
  float overlap;
  int x1, y1, x2, y2;
} ns_window;

typedef struct ns_window_image {
  char *path; /* root_folder + the file's path */
  int channels, height, width;
} ns_window_image;

typedef struct ns_window_file {
  ns_window_image *images;
  int n_images;
  ns_window *fg, *bg;
  int n_fg, n_bg;
} ns_window_file;

/* Reads and checks the window file (indices in order from 0, windows
 * inside their declared image); errors name the file and line. */
ns_status ns_window_file_read(ns_ctx *ctx, const char *path, const char *root, float fg_threshold,
                              float bg_threshold, ns_window_file *out);
void ns_window_file_free(ns_ctx *ctx, ns_window_file *f);

#endif
