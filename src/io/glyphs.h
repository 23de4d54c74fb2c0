/* Text for figures: a 5x7 pixel font (digits, ". - + e ( ) p m a x" and
 * space), each glyph pixel drawn as scale x scale pixels. */
#ifndef NS_IO_GLYPHS_H
#define NS_IO_GLYPHS_H

#define NS_GLYPH_HEIGHT 7  /* glyph rows */
#define NS_GLYPH_ADVANCE 6 /* columns from one character to the next */

/* Black text with its top-left corner at (y, x) of a height x width RGB
 * canvas (rows of width * 3 bytes); clipped to it. */
void ns_draw_text(unsigned char *rgb, int height, int width, int y, int x, int scale,
                  const char *text);

#endif
