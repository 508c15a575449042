() => {
  document.addEventListener('click', (e) => {
    const a = e.target.closest('a[href^="#src-"]');
    if (a) {
      e.preventDefault();
      const el = document.getElementById(a.getAttribute('href').slice(1));
      if (el) {
        const d = el.closest('details'); if (d) d.open = true;
        el.scrollIntoView({behavior: 'smooth', block: 'center'});
        el.classList.add('flash'); setTimeout(() => el.classList.remove('flash'), 1500);
      }
      return;
    }
    const b = e.target.closest('button.open-page');
    if (b) {
      const box = document.querySelector('#open-ref textarea');
      box.value = b.dataset.ref; box.dispatchEvent(new Event('input', {bubbles: true}));
      setTimeout(() => document.getElementById('open-go').click(), 50);
    }
  }, true);
}
