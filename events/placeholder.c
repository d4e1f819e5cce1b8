int tk_events_placeholder_(void); int tk_events_placeholder_(void){return 0;}
