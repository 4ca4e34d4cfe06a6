console.log('web service')
