dist_man_MANS += man/portico.8 man/portico.conf.5
